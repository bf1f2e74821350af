"""NVIDIA cuOpt on NVCF as the provider speaks it: paths, limits, envelopes, statuses. No I/O here.

Follows the NVCF "exec" envelope flow the cuOpt thin client uses (see ``docs/cuopt.md``):
``POST /v2/nvcf/exec/functions/{id}[/versions/{vid}]`` with ``{"requestHeader", "requestBody"}``,
long polling with an explicit ``pollDurationSeconds``, 202 ``pending-evaluation`` → poll
``/v2/nvcf/exec/status/{reqId}``; payloads over 250,000 bytes go as zlib-compressed JSON assets
(never pickle); results of 5 MiB or more arrive as a presigned zip (``responseReference``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import quote

from airflow_provider.exceptions import CredentialsError, InvalidInputError, ProtocolError
from airflow_provider.utils.http import TLSSettings

DEFAULT_ENDPOINT = "https://api.nvcf.nvidia.com"
#: SSA client-credentials token endpoint the thin client uses by default (deprecated by NVIDIA).
DEFAULT_TOKEN_URL = "https://tbyyhdy8-opimayg5nq78mx1wblbi8enaifkmlqrm8m.ssa.nvidia.com/token"
TOKEN_SCOPES = "invoke_function list_functions"

#: JSON payloads above this many bytes are uploaded as an NVCF asset (cuOpt docs: "<= 250KB").
MAX_INLINE_BYTES = 250_000
#: Largest asset NVCF accepts (docs: 5 GB per asset).
MAX_ASSET_BYTES = 5_000_000_000
ASSET_CONTENT_TYPE = "application/octet-stream"
ASSET_DESCRIPTION = "Optimization-data"
#: Server-side hold of invoke/status requests; the HTTP read timeout must exceed it.
DEFAULT_POLL_SECONDS = 30
MAX_POLL_SECONDS = 300
#: Refresh a JWT this long before it expires (the thin client pads 120 s).
TOKEN_REFRESH_LEAD = 120.0
#: Member names of a large-result zip, in order of preference.
LARGE_RESULT_MEMBERS = ("large_result",)


class InvocationStatus(str, Enum):
    """NVCF envelope ``status``; the one status enum of the cuOpt operator, sensor and trigger."""

    PENDING_EVALUATION = "pending-evaluation"
    IN_PROGRESS = "in-progress"
    FULFILLED = "fulfilled"
    ERRORED = "errored"
    REJECTED = "rejected"

    @property
    def is_pending(self) -> bool:
        return self in (InvocationStatus.PENDING_EVALUATION, InvocationStatus.IN_PROGRESS)


#: NVCF ``errorCode`` meanings, as the thin client maps them.
ERROR_CODES = {
    900: "unknown or unexpected NVCF error",
    901: "no request id in the message",
    902: "no inference URL for the function",
    903: "no response queue",
    910: "NVCF could not download the input asset",
    911: "NVCF could not upload the large response",
}


@dataclass(frozen=True)
class CuOptSettings:
    """Everything the hooks need from the Airflow connection, resolved once."""

    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_url: str = DEFAULT_TOKEN_URL
    function_id: str | None = None
    function_name: str | None = None
    function_version_id: str | None = None
    tls: TLSSettings = field(default_factory=TLSSettings)

    @classmethod
    def from_connection(
        cls, host: str | None, password: str | None, extras: Mapping[str, Any]
    ) -> CuOptSettings:
        api_key = (password or extras.get("api_key") or "").strip() or None
        client_id = (extras.get("client_id") or "").strip() or None
        client_secret = (extras.get("client_secret") or "").strip() or None
        if api_key and client_id:
            raise CredentialsError(
                "The cuOpt connection has both an API key (password) and a client id (extra client_id); "
                "keep exactly one kind of credentials."
            )
        if not api_key and not (client_id and client_secret):
            raise CredentialsError(
                "The cuOpt connection has no credentials: put an NVCF API key in the password field, or "
                "client_id and client_secret (client-credentials) in the extras."
            )
        endpoint = (host or extras.get("endpoint") or DEFAULT_ENDPOINT).strip()
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        return cls(
            endpoint=endpoint.rstrip("/"),
            api_key=api_key,
            client_id=client_id,
            client_secret=client_secret,
            token_url=(extras.get("token_url") or DEFAULT_TOKEN_URL).strip(),
            function_id=(extras.get("function_id") or "").strip() or None,
            function_name=(extras.get("function_name") or "").strip() or None,
            function_version_id=(extras.get("function_version_id") or "").strip() or None,
            tls=TLSSettings.from_extras(dict(extras)),
        )

    @property
    def uses_client_credentials(self) -> bool:
        return self.api_key is None

    def url(self, path: str) -> str:
        return f"{self.endpoint}/{path.lstrip('/')}"


# ---------------------------------------------------------------------------------------------- paths
FUNCTIONS_PATH = "v2/nvcf/functions"
ASSETS_PATH = "v2/nvcf/assets"


def asset_path(asset_id: str) -> str:
    return f"{ASSETS_PATH}/{quote(asset_id, safe='')}"


def exec_path(function_id: str, version_id: str | None = None) -> str:
    path = f"v2/nvcf/exec/functions/{quote(function_id, safe='')}"
    return f"{path}/versions/{quote(version_id, safe='')}" if version_id else path


def status_path(req_id: str) -> str:
    if not req_id or not str(req_id).strip():
        raise InvalidInputError("request id is empty; pass the id returned by CuOptSolveOperator.")
    return f"v2/nvcf/exec/status/{quote(str(req_id), safe='')}"


# ---------------------------------------------------------------------------------------------- tokens
def token_request_form() -> dict[str, str]:
    return {"grant_type": "client_credentials", "scope": TOKEN_SCOPES}


@dataclass(frozen=True)
class Token:
    """A bearer token and its absolute expiry (epoch seconds; ``inf`` for API keys)."""

    value: str
    expires_at: float

    def fresh(self, now: float, lead: float = TOKEN_REFRESH_LEAD) -> bool:
        """Valid for longer than the refresh lead (capped at half the token's life for short TTLs)."""
        return self.expires_at - now > lead

    @classmethod
    def from_token_response(cls, payload: Any, now: float) -> Token:
        if not isinstance(payload, Mapping) or not isinstance(payload.get("access_token"), str):
            raise ProtocolError(f"token endpoint returned no access_token: {str(payload)[:200]}")
        try:
            ttl = float(payload.get("expires_in", 0))
        except (TypeError, ValueError):
            raise ProtocolError(
                f"token endpoint returned a bad expires_in: {payload.get('expires_in')!r}"
            ) from None
        return cls(payload["access_token"], now + ttl)


def refresh_lead(ttl: float) -> float:
    """How early to refresh a token of lifetime ``ttl``: 120 s, or a quarter of short lifetimes."""
    return min(TOKEN_REFRESH_LEAD, max(ttl, 0.0) / 4)


class TokenCache:
    """In-memory JWT cache (never written to disk, unlike the thin client's token_cache.json).

    Checked before *every* call: a token is replaced once it is within its refresh lead of expiry,
    so a long poll never starts with a token about to lapse.
    """

    def __init__(self) -> None:
        self._token: Token | None = None
        self._lead = TOKEN_REFRESH_LEAD

    def current(self, now: float) -> str | None:
        if self._token is not None and self._token.fresh(now, self._lead):
            return self._token.value
        return None

    def store(self, token: Token, now: float) -> None:
        self._token = token
        self._lead = refresh_lead(token.expires_at - now)

    def invalidate(self) -> None:
        self._token = None


# ---------------------------------------------------------------------------------------------- functions
def parse_created_at(value: Any) -> float:
    """NVCF writes ``2023-08-14T12:16:32.116Z``; tolerate missing fractions or an offset."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def select_function(
    functions: Sequence[Mapping[str, Any]],
    *,
    function_id: str | None,
    function_name: str | None,
    version_id: str | None,
) -> tuple[str, str]:
    """Pick (function id, version id) the way the thin client does: ACTIVE versions only, newest
    ``createdAt`` wins, an id beats a name, a pinned version must exist."""
    active = [f for f in functions if str(f.get("status", "")).upper() == "ACTIVE" and f.get("id")]
    if function_id:
        candidates = [f for f in active if f["id"] == function_id]
        what = f"function id {function_id}"
    elif function_name:
        candidates = [f for f in active if f.get("name") == function_name]
        what = f"function name {function_name!r}"
    else:
        names = {f.get("name") for f in active}
        if len(names) > 1:
            raise InvalidInputError(
                f"Several NVCF functions are available ({', '.join(sorted(map(str, names)))}); set function_id or "
                "function_name in the cuOpt connection or on the operator."
            )
        candidates, what = active, "any function"
    if version_id:
        candidates = [f for f in candidates if f.get("versionId") == version_id]
        what += f" version {version_id}"
    if not candidates:
        raise InvalidInputError(
            f"No ACTIVE NVCF function matches {what}; check the cuOpt connection's function settings."
        )
    newest = max(candidates, key=lambda f: parse_created_at(f.get("createdAt")))
    return str(newest["id"]), str(newest.get("versionId") or "")


# ---------------------------------------------------------------------------------------------- invoke
def clamp_poll_seconds(seconds: int) -> int:
    return max(1, min(int(seconds), MAX_POLL_SECONDS))


def invoke_body(
    *,
    data: Any = None,
    asset_id: str | None = None,
    poll_seconds: int = DEFAULT_POLL_SECONDS,
    action: str | None = None,
) -> dict[str, Any]:
    """The exec envelope. With an asset, ``data`` is null and the asset holds the problem."""
    header: dict[str, Any] = {"pollDurationSeconds": clamp_poll_seconds(poll_seconds)}
    if asset_id:
        header["inputAssetReferences"] = [asset_id]
    body: dict[str, Any] = {"data": None if asset_id else data, "client_version": "custom"}
    if action:
        body["action"] = action
    return {"requestHeader": header, "requestBody": body}


def gone_message(req_id: str) -> str:
    return (
        f"NVCF does not know request {req_id} (HTTP 404): its result was already handed out once "
        "(NVCF delivers a result only once) or the request expired."
    )


def poll_headers(poll_seconds: int) -> dict[str, str]:
    """Status polls carry their window explicitly (``NVCF-POLL-SECONDS``), so NVCF never holds a
    request longer than the client's read timeout allows."""
    return {"NVCF-POLL-SECONDS": str(clamp_poll_seconds(poll_seconds))}


def serialize_problem(problem: Any) -> bytes:
    if not isinstance(problem, (dict, list)):
        raise InvalidInputError(
            f"a cuOpt problem is a JSON object (or a list for batch LP), got {type(problem).__name__}"
        )
    try:
        return json.dumps(problem, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"problem is not JSON-serializable: {exc}") from exc


def needs_asset(size: int) -> bool:
    if size > MAX_ASSET_BYTES:
        raise InvalidInputError(
            f"Problem is {size:,} bytes; NVCF assets hold at most {MAX_ASSET_BYTES:,} bytes."
        )
    return size > MAX_INLINE_BYTES


@dataclass(frozen=True)
class Invocation:
    """One interpreted NVCF answer (to an invoke or a status poll)."""

    status: InvocationStatus
    req_id: str
    response: Any = None
    response_reference: str | None = None
    error_code: int | None = None
    message: str = ""

    @property
    def pending(self) -> bool:
        return self.status.is_pending


def is_error_envelope(http_status: int, payload: Any) -> bool:
    """An NVCF error answer that carries an envelope is the request's outcome, not a transport error."""
    return (
        http_status >= 400
        and isinstance(payload, Mapping)
        and payload.get("status") in (InvocationStatus.ERRORED.value, InvocationStatus.REJECTED.value)
        and bool(payload.get("reqId"))
    )


def interpret(http_status: int, payload: Any, *, req_id_header: str | None = None) -> Invocation:
    """Turn an exec/status answer (HTTP status + envelope) into an :class:`Invocation`."""
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"NVCF returned a non-object body (HTTP {http_status}): {str(payload)[:300]}")
    req_id = str(payload.get("reqId") or req_id_header or "")
    raw = payload.get("status")
    if http_status == 202 and raw is None:
        raw = InvocationStatus.PENDING_EVALUATION.value
    try:
        status = InvocationStatus(raw)
    except ValueError:
        raise ProtocolError(f"NVCF returned an unknown status {raw!r} (HTTP {http_status})") from None
    if not req_id:
        raise ProtocolError(f"NVCF answer has no reqId (HTTP {http_status}, status {raw})")
    if status is InvocationStatus.FULFILLED:
        if "response" not in payload and not payload.get("responseReference"):
            raise ProtocolError(
                f"NVCF request {req_id} is fulfilled but has neither response nor responseReference"
            )
        return Invocation(status, req_id, payload.get("response"), payload.get("responseReference") or None)
    if status.is_pending:
        return Invocation(status, req_id)
    code = payload.get("errorCode")
    code = int(code) if isinstance(code, (int, float, str)) and str(code).isdigit() else None
    detail = payload.get("errorMessage") or payload.get("detail") or payload.get("error") or ""
    meaning = ERROR_CODES.get(code or -1, "")
    message = "; ".join(
        p for p in (f"errorCode {code}" if code is not None else "", meaning, str(detail)) if p
    )
    return Invocation(status, req_id, error_code=code, message=message or f"request {status.value}")
