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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import quote

from airflow_provider.exceptions import CredentialsError, InvalidInputError, ProtocolError
from airflow_provider.protocol.nvcf_tokens import DEFAULT_TOKEN_URL
from airflow_provider.utils.http import TLSSettings
from airflow_provider.utils.ids import safe_id

DEFAULT_ENDPOINT = "https://api.nvcf.nvidia.com"

#: JSON payloads above this many bytes are uploaded as an NVCF asset (cuOpt docs: "<= 250KB").
MAX_INLINE_BYTES = 250_000
#: Largest asset NVCF accepts (docs: 5 GB per asset).
MAX_ASSET_BYTES = 5_000_000_000
ASSET_CONTENT_TYPE = "application/octet-stream"
ASSET_DESCRIPTION = "Optimization-data"
#: Server-side hold of invoke/status requests; the HTTP read timeout must exceed it.
DEFAULT_POLL_SECONDS = 30
MAX_POLL_SECONDS = 300
#: Why cuOpt tasks need an ``output_uri``.
OUTPUT_URI_WHY = "NVCF hands a result out once, so it must be stored"
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


def _segment(value: str, what: str) -> str:
    return quote(safe_id(value, what), safe="")


def asset_path(asset_id: str) -> str:
    """One NVCF asset (its id validated like every id: no ``..``, ``/``, control characters)."""
    return f"{ASSETS_PATH}/{_segment(asset_id, 'NVCF asset id')}"


def exec_path(function_id: str, version_id: str | None = None) -> str:
    """Where a function (version) is invoked."""
    path = f"v2/nvcf/exec/functions/{_segment(function_id, 'NVCF function id')}"
    return f"{path}/versions/{_segment(version_id, 'NVCF function version id')}" if version_id else path


def status_path(req_id: str) -> str:
    """Where a pending request is long-polled."""
    return f"v2/nvcf/exec/status/{_segment(req_id, 'NVCF request id')}"


# ---------------------------------------------------------------------------------------------- functions
def parse_created_at(value: Any) -> float:
    """NVCF writes ``2023-08-14T12:16:32.116Z``; tolerate missing fractions or an offset."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _usable_function(entry: Any) -> bool:
    """An ACTIVE function version whose fields have the types NVCF documents (others are ignored)."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str) or not entry["id"]:
        return False
    if any(not isinstance(entry.get(key, ""), str) for key in ("name", "versionId", "status", "createdAt")):
        return False
    return str(entry.get("status", "")).upper() == "ACTIVE"


def select_function(
    functions: Sequence[Mapping[str, Any]],
    *,
    function_id: str | None,
    function_name: str | None,
    version_id: str | None,
) -> tuple[str, str]:
    """Pick (function id, version id) the way the thin client does: ACTIVE versions only, newest
    ``createdAt`` wins, an id beats a name, a pinned version must exist."""
    active = [f for f in functions if _usable_function(f)]
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
    """A long-poll window NVCF accepts (a window computed from a deadline is clamped, not refused)."""
    return max(1, min(int(seconds), MAX_POLL_SECONDS))


def check_poll_seconds(seconds: Any) -> int:
    """The one rule for a *task argument* ``poll_seconds``: 1 to ``MAX_POLL_SECONDS`` (else refused)."""
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_POLL_SECONDS or value != seconds:
        raise InvalidInputError(
            f"poll_seconds must be a whole number from 1 to {MAX_POLL_SECONDS}, got {seconds!r}"
        )
    return value


def invoke_body(
    *,
    data_json: bytes | None = None,
    asset_id: str | None = None,
    poll_seconds: int = DEFAULT_POLL_SECONDS,
    action: str | None = None,
) -> bytes:
    """The exec envelope, serialised once: the problem's compact JSON (``data_json``, what the 250,000-byte
    rule measured) is spliced in verbatim. With an asset, ``data`` is null and the asset holds the problem."""
    header: dict[str, Any] = {"pollDurationSeconds": clamp_poll_seconds(poll_seconds)}
    if asset_id:
        header["inputAssetReferences"] = [safe_id(asset_id, "NVCF asset id")]
    rest: dict[str, Any] = {"client_version": "custom"}
    if action:
        rest["action"] = action
    data = b"null" if asset_id or data_json is None else data_json
    head = json.dumps({"requestHeader": header}, separators=(",", ":")).encode()
    tail = json.dumps(rest, separators=(",", ":")).encode()
    return head[:-1] + b',"requestBody":{"data":' + data + b"," + tail[1:] + b"}"


def poll_window(poll_seconds: int, remaining: float) -> int:
    """The long-poll window of the next status call: never past the wait's deadline, at least 1 s."""
    return max(1, min(clamp_poll_seconds(poll_seconds), int(remaining) or 1))


def asset_request_body() -> bytes:
    """The POST ``/v2/nvcf/assets`` body."""
    return json.dumps({"contentType": ASSET_CONTENT_TYPE, "description": ASSET_DESCRIPTION}).encode()


def asset_upload_headers() -> dict[str, str]:
    """The headers NVCF signs into an asset's presigned upload URL (they must be sent as signed)."""
    return {"Content-Type": ASSET_CONTENT_TYPE, "x-amz-meta-nvcf-asset-description": ASSET_DESCRIPTION}


def asset_from_answer(payload: Any) -> tuple[str, str]:
    """(asset id, upload URL) of an asset-creation answer; the id validated before it names a path."""
    payload = payload if isinstance(payload, Mapping) else {}
    asset_id, upload_url = payload.get("assetId"), payload.get("uploadUrl")
    if not isinstance(asset_id, str) or not isinstance(upload_url, str) or not upload_url:
        raise ProtocolError(f"NVCF asset creation returned no assetId/uploadUrl: {str(list(payload))[:200]}")
    return safe_id(asset_id, "NVCF assetId in the answer"), upload_url


def ambiguous_invoke_message(function: tuple[str, str], exc: BaseException, asset_id: str | None) -> str:
    """What to tell a user whose invocation failed in a way that leaves unknown whether NVCF took it."""
    return (
        f"Invoking NVCF function {function[0]} (version {function[1]}) failed ambiguously: {exc}. NVCF may "
        "have accepted the request, and it offers no way to find it without its request id, so it was not "
        "sent again (that could start a duplicate solve). Check the function's queue/usage on NVCF before "
        f"re-running this task{'; input asset ' + asset_id if asset_id else ''}."
    )


def gone_message(req_id: str) -> str:
    """Why NVCF answers 404 for a request it once accepted."""
    return (
        f"NVCF does not know request {req_id} (HTTP 404): its result was already handed out once "
        "(NVCF delivers a result only once) or the request expired."
    )


def poll_headers(poll_seconds: int) -> dict[str, str]:
    """Status polls carry their window explicitly (``NVCF-POLL-SECONDS``), so NVCF never holds a
    request longer than the client's read timeout allows."""
    return {"NVCF-POLL-SECONDS": str(clamp_poll_seconds(poll_seconds))}


def serialize_problem(problem: Any) -> bytes:
    """A cuOpt problem as compact JSON (what is measured against the inline limit and sent)."""
    if not isinstance(problem, (dict, list)):
        raise InvalidInputError(
            f"a cuOpt problem is a JSON object (or a list for batch LP), got {type(problem).__name__}"
        )
    try:
        return json.dumps(problem, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"problem is not JSON-serializable: {exc}") from exc


def needs_asset(size: int) -> bool:
    """Whether a problem of ``size`` bytes goes as an asset (refused above NVCF's asset limit)."""
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


_ERROR_CODE = re.compile(r"[0-9]{1,6}")


def error_code(value: Any) -> int | None:
    """NVCF's ``errorCode`` as an int: ASCII digits only, at most six of them (else None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 1_000_000 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 <= value < 1_000_000 else None
    if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
        return int(value)
    return None


def interpret(http_status: int, payload: Any, *, req_id_header: str | None = None) -> Invocation:
    """Turn an exec/status answer (HTTP status + envelope) into an :class:`Invocation`."""
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"NVCF returned a non-object body (HTTP {http_status}): {str(payload)[:300]}")
    raw_id = payload.get("reqId") or req_id_header or ""
    if not raw_id:
        raise ProtocolError(
            f"NVCF answer has no reqId (HTTP {http_status}, status {payload.get('status')!r})"
        )
    req_id = safe_id(raw_id, "NVCF reqId in the answer")
    raw = payload.get("status")
    if http_status == 202 and raw is None:
        raw = InvocationStatus.PENDING_EVALUATION.value
    try:
        status = InvocationStatus(raw) if isinstance(raw, str) else InvocationStatus(None)
    except ValueError:
        raise ProtocolError(
            f"NVCF returned an unknown status {str(raw)[:80]!r} (HTTP {http_status})"
        ) from None
    if status is InvocationStatus.FULFILLED:
        reference = payload.get("responseReference") or None
        if reference is not None and not isinstance(reference, str):
            raise ProtocolError(f"NVCF request {req_id} has a responseReference that is not a URL")
        if "response" not in payload and reference is None:
            raise ProtocolError(
                f"NVCF request {req_id} is fulfilled but has neither response nor responseReference"
            )
        return Invocation(status, req_id, payload.get("response"), reference)
    if status.is_pending:
        return Invocation(status, req_id)
    code = error_code(payload.get("errorCode"))
    detail = payload.get("errorMessage") or payload.get("detail") or payload.get("error") or ""
    meaning = ERROR_CODES.get(code or -1, "")
    message = "; ".join(
        p for p in (f"errorCode {code}" if code is not None else "", meaning, str(detail)) if p
    )
    return Invocation(status, req_id, error_code=code, message=message or f"request {status.value}")
