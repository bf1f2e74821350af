"""The self-hosted cuOpt server (``cuopt_server`` 26.10, legacy REST or gRPC proxy) as the provider
speaks it: connection settings, paths, headers, answer decoding and classification. No I/O here.

JSON only, both ways (``shared/reference/cuopt_selfhosted.md`` §10): problems go as
``application/json`` or, above :data:`ZLIB_THRESHOLD` bytes, as zlib-compressed JSON
(``application/zlib``), always with an exact ``Content-Length``; every call sends
``Accept: application/json`` (the server's wildcard default is msgpack) and ``CLIENT-VERSION``.
An answer is decoded only when its Content-Type is JSON or zlib-JSON: msgpack (whose
msgpack-numpy hook unpickles) and pickle are refused undecoded. Only the portable subset of the API
is used (single-problem POST, GET/DELETE solution, DELETE request without flags, logs, health),
and validation errors are expected at submission (proxy) *and* at the first poll (legacy).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from airflow_provider.exceptions import InvalidInputError, MalformedResponseError, ProtocolError
from airflow_provider.protocol.cuopt import MAX_INLINE_BYTES
from airflow_provider.utils.http import TLSSettings, too_large
from airflow_provider.utils.ids import safe_id

SERVICE = "cuOpt server"
CONN_TYPE = "cuopt_server"
DEFAULT_CLIENT_VERSION = "custom"
JSON = "application/json"
ZLIB = "application/zlib"
#: Problems of more compact-JSON bytes than this are sent zlib-compressed (as the NVCF asset rule).
ZLIB_THRESHOLD = MAX_INLINE_BYTES
#: A poll answer is read into memory up to this size: pending answers are ``{"reqId"}``, errors
#: and small results fit; a larger answer is a finished result and is streamed to storage instead.
POLL_ANSWER_CAP = 1024 * 1024
#: Largest result streamed to ``output_uri`` (uncompressed), and largest result file read.
MAX_RESULT_BYTES = 2 * 1024**3
#: Largest solver-log answer read (it lists the whole log from ``frombyte``), and how much of its end
#: is copied into the task log.
MAX_LOG_ANSWER_BYTES = 16 * 1024 * 1024
LOG_TAIL_BYTES = 64 * 1024
HEALTH_PATH = "cuopt/health"
REQUEST_PATH = "cuopt/request"
#: Statuses of an error answer that are the job's (or the request's) outcome, not a transport fault.
_OUTCOME_STATUS = frozenset(range(400, 500)) - {408, 429}


def _flag(value: Any, default: bool = True) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off")
    return bool(value)


@dataclass(frozen=True)
class CuOptServerSettings:
    """The ``cuopt_server`` connection, resolved once.

    ``host`` may carry the scheme (``https://cuopt.internal``); without one, the connection's
    *schema* field (``http``/``https``) decides, else plain ``http`` (the server's default).
    """

    base_url: str
    tls: TLSSettings = field(default_factory=TLSSettings)
    auth_header: str | None = None
    auth_value: str | None = field(default=None, repr=False)
    client_version: str = DEFAULT_CLIENT_VERSION
    result_dir: str | None = None

    @classmethod
    def from_connection(
        cls,
        host: str | None,
        port: int | str | None,
        schema: str | None,
        password: str | None,
        extras: Mapping[str, Any],
    ) -> CuOptServerSettings:
        raw = (host or "").strip()
        if not raw:
            raise InvalidInputError(
                "The cuopt_server connection has no host: set it to the server's address, e.g. "
                "'cuopt.internal' or 'https://cuopt.internal' (port in the port field)."
            )
        scheme = (schema or "").strip().lower() or "http"
        if "://" in raw:
            scheme, raw = raw.split("://", 1)
            scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidInputError(
                f"The cuopt_server connection's scheme must be http or https, not {scheme!r}."
            )
        parts = urlsplit(f"{scheme}://{raw}")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise InvalidInputError("The cuopt_server connection's host must be a plain host[:port][/path].")
        netloc, path = parts.netloc, parts.path.rstrip("/")
        if port not in (None, "") and parts.port is None:
            netloc = f"{netloc}:{int(port)}"
        header = (extras.get("auth_header_name") or "").strip() or None
        value = (password or extras.get("auth_header_value") or "").strip() or None
        if value and not header:
            raise InvalidInputError(
                "The cuopt_server connection has a secret (password) but no 'auth_header_name' extra: "
                "name the header your gateway expects (e.g. 'Authorization' or 'X-API-Key')."
            )
        if header and not value:
            raise InvalidInputError(
                f"The cuopt_server connection names the gateway header {header!r} but has no value: put "
                "the secret in the password field."
            )
        result_dir = (extras.get("result_dir") or "").strip() or None
        return cls(
            base_url=f"{scheme}://{netloc}{path}",
            tls=TLSSettings.from_extras(dict(extras)),
            auth_header=header,
            auth_value=value,
            client_version=(extras.get("client_version") or "").strip() or DEFAULT_CLIENT_VERSION,
            result_dir=result_dir,
        )

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        """Sent on every call: JSON answers only, the client version, the gateway's header if any."""
        headers = {"Accept": JSON, "CLIENT-VERSION": self.client_version}
        if self.auth_header and self.auth_value:
            headers[self.auth_header] = self.auth_value
        return headers


# ---------------------------------------------------------------------------------------------- paths
def _segment(req_id: str) -> str:
    return quote(safe_id(req_id, "cuOpt server request id"), safe="")


def solution_path(req_id: str) -> str:
    return f"cuopt/solution/{_segment(req_id)}"


def request_path(req_id: str) -> str:
    """``DELETE`` here aborts a queued or running job (sent without flags: the proxy refuses them)."""
    return f"{REQUEST_PATH}/{_segment(req_id)}"


def log_path(req_id: str, frombyte: int = 0) -> str:
    return f"cuopt/log/{_segment(req_id)}?frombyte={max(0, int(frombyte))}"


def delete_log_path(req_id: str) -> str:
    return f"cuopt/log/{_segment(req_id)}"


@dataclass(frozen=True)
class SubmitOptions:
    """Per-solve settings of ``POST /cuopt/request`` (task arguments of the operator)."""

    validation_only: bool = False
    solver_logs: bool = False
    warmstart_id: str | None = None
    initial_ids: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        validation_only: bool = False,
        solver_logs: bool = False,
        warmstart_id: str | None = None,
        initial_ids: Sequence[str] | None = None,
    ) -> SubmitOptions:
        """Checked once, when the operator is built: ids must be plain tokens."""
        if isinstance(initial_ids, str):
            initial_ids = [initial_ids]
        return cls(
            bool(validation_only),
            bool(solver_logs),
            safe_id(warmstart_id, "warmstart_id") if warmstart_id else None,
            tuple(safe_id(i, "initial_ids entry") for i in (initial_ids or ())),
        )

    @property
    def is_default(self) -> bool:
        return self == SubmitOptions()


def submit_path(options: SubmitOptions) -> str:
    """``cuopt/request`` with its query: the flags the sh client sends, ids only when set."""
    query: list[tuple[str, str]] = [
        ("validation_only", str(options.validation_only)),
        ("cache", "False"),
        ("incumbent_solutions", "False"),
        ("solver_logs", str(options.solver_logs)),
    ]
    if options.warmstart_id:
        query.append(("warmstartId", options.warmstart_id))
    query += [("initialId", i) for i in options.initial_ids]
    return f"{REQUEST_PATH}?{urlencode(query)}"


def body_headers(compressed: bool) -> dict[str, str]:
    """Content-Type of a problem body (the Content-Length comes from the body's exact size)."""
    return {"Content-Type": ZLIB if compressed else JSON}


# ---------------------------------------------------------------------------------------------- answers
def media_type(headers: Mapping[str, str]) -> str:
    """The Content-Type without parameters, lower-cased ('' when absent)."""
    value = headers.get("Content-Type") or headers.get("content-type") or ""
    return value.split(";", 1)[0].strip().lower()


def decode_answer(status: int, headers: Mapping[str, str], body: bytes, cap: int = POLL_ANSWER_CAP) -> Any:
    """The JSON of an answer, after its Content-Type was checked (``decode`` of the API call).

    JSON (parameters tolerated) and zlib-JSON are decoded, zlib under ``cap``. An empty body is
    ``None`` (``DELETE /cuopt/solution`` answers nothing, without a type). A success answer of any
    other type (msgpack, pickle, HTML from a proxy) is refused *without decoding it*: msgpack-numpy
    would unpickle. An error answer of another type is left undecoded for the error message.
    """
    kind = media_type(headers)
    if not body.strip():
        return None
    if kind not in (JSON, ZLIB):
        if status >= 400:
            return None
        raise ProtocolError(
            f"{SERVICE} answered HTTP {status} with Content-Type {kind or 'none'!r}; only "
            f"{JSON} and {ZLIB} are accepted (msgpack and pickle are never decoded). Check that the "
            "connection points at a cuOpt server and that nothing in between rewrites answers."
        )
    if kind == ZLIB:
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(body, cap + 1)
        except zlib.error as exc:
            raise MalformedResponseError(f"{SERVICE} answered corrupt zlib data: {exc}") from exc
        if len(body) > cap or inflater.unconsumed_tail:
            raise too_large(SERVICE, "a zlib answer", cap, "once decompressed")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MalformedResponseError(f"{SERVICE} answered malformed JSON: {exc}") from exc


def is_outcome(status: int, payload: Any) -> bool:
    """An error answer that is the job's or the request's outcome (``accept`` of the API call):
    a 4xx with ``{"error"}`` (not 408/429), or a 5xx that says ``error_result: true`` (the job
    ended in error). Other 5xx, and 429, are transport trouble the retry policy handles."""
    if status < 400 or not isinstance(payload, Mapping) or "error" not in payload:
        return False
    return status in _OUTCOME_STATUS or payload.get("error_result") is True


def error_text(payload: Any) -> str:
    if isinstance(payload, Mapping):
        return str(payload.get("error") or payload)[:2000]
    return str(payload)[:2000]


def submitted_id(status: int, payload: Any) -> str:
    """The ``reqId`` of a ``POST /cuopt/request`` answer; a refusal (the proxy validates here) is
    :class:`InvalidInputError`, with the server's words."""
    if status >= 400:
        raise InvalidInputError(
            f"The cuOpt server refused the problem (HTTP {status}): {error_text(payload)}. Fix the problem "
            "data (see the cuOpt LP/MILP/routing schema); the request was not retried."
        )
    if not isinstance(payload, Mapping) or not payload.get("reqId"):
        raise ProtocolError(f"{SERVICE} accepted the problem without a reqId: {str(payload)[:300]}")
    return safe_id(payload["reqId"], "cuOpt server reqId in the answer")


class SolutionState(str, Enum):
    """What one ``GET /cuopt/solution/{id}`` said; the server backend's one status enum."""

    PENDING = "pending"
    #: A result small enough to have been read whole (``payload``).
    DONE = "done"
    #: A result larger than :data:`POLL_ANSWER_CAP`: stream it again to storage.
    LARGE = "large"
    #: ``{"result_file", "format"}``: the server wrote the result to its own result directory.
    RESULT_FILE = "result_file"
    #: The job ended in error (invalid problem, solver failure, aborted).
    FAILED = "failed"
    #: 404: the server does not know the id (deleted, or the server restarted and lost it).
    GONE = "gone"

    @property
    def is_pending(self) -> bool:
        return self is SolutionState.PENDING


@dataclass(frozen=True)
class SolutionAnswer:
    """One interpreted poll; duck-compatible with NVCF's ``Invocation`` where operators read it."""

    status: SolutionState
    req_id: str
    payload: Any = None
    message: str = ""

    @property
    def pending(self) -> bool:
        return self.status.is_pending


def interpret_solution(req_id: str, status: int, payload: Any) -> SolutionAnswer:
    """Classify a (read, decoded, accepted) poll answer of request ``req_id``."""
    if status == 404:
        return SolutionAnswer(SolutionState.GONE, req_id, message=gone_message(req_id))
    if status >= 400:
        message = f"cuOpt server request {req_id} ended in error (HTTP {status}): {error_text(payload)}"
        return SolutionAnswer(SolutionState.FAILED, req_id, payload, message)
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"{SERVICE} answered a poll of {req_id} with a non-object: {str(payload)[:300]}")
    if set(payload) == {"reqId"}:
        return SolutionAnswer(SolutionState.PENDING, req_id)
    if payload.get("error_result") is True:
        return SolutionAnswer(SolutionState.FAILED, req_id, payload, error_text(payload))
    if "result_file" in payload:
        return SolutionAnswer(SolutionState.RESULT_FILE, req_id, payload)
    if "response" in payload:
        return SolutionAnswer(SolutionState.DONE, req_id, payload)
    raise ProtocolError(
        f"{SERVICE} answered a poll of {req_id} with neither a result nor an error: {sorted(payload)[:20]}"
    )


def gone_message(req_id: str) -> str:
    return (
        f"The cuOpt server does not know request {req_id} (HTTP 404): it was deleted, or the server "
        "restarted and lost it (results live in the server's memory until deleted)."
    )


def result_file_path(payload: Mapping[str, Any], result_dir: str | None) -> tuple[Path, str]:
    """(local path, format) of a ``result_file`` answer, read from the connection's ``result_dir``
    (the local mount of the server's ``CUOPT_RESULT_DIR``); the name must stay inside it."""
    name, fmt = payload.get("result_file"), str(payload.get("format") or "json").lower()
    if not result_dir:
        raise InvalidInputError(
            f"The cuOpt server wrote the result to a file on its own disk ({str(name)[:200]!r} in its "
            "CUOPT_RESULT_DIR). Set the connection's 'result_dir' extra to where that directory is mounted "
            "on the workers and triggerer, or unset CUOPT_RESULT_DIR / raise CUOPT_MAX_RESULT on the server."
        )
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"{SERVICE} answered a result_file without a file name: {str(payload)[:300]}")
    root = Path(result_dir).resolve()
    target = (root / safe_id(os.path.basename(name), "cuOpt result file name")).resolve()
    if target.parent != root:
        raise ProtocolError(f"{SERVICE} result file {name!r} is not inside result_dir {result_dir!r}")
    if fmt not in ("json", "zlib"):
        raise ProtocolError(
            f"{SERVICE} wrote the result as {fmt!r}; only json and zlib result files are read (never "
            "msgpack or pickle)."
        )
    return target, fmt


def log_lines(payload: Any) -> tuple[list[str], int]:
    """(lines, next offset) of a ``GET /cuopt/log/{id}`` answer."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("log"), list):
        raise ProtocolError(f"{SERVICE} log answer has no 'log' list: {str(payload)[:200]}")
    nbytes = payload.get("nbytes")
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ProtocolError(f"{SERVICE} log answer has no valid 'nbytes': {nbytes!r}")
    return [str(line) for line in payload["log"]], nbytes


def log_tail(lines: Sequence[str], limit: int = LOG_TAIL_BYTES) -> tuple[list[str], int]:
    """The last lines of a log that fit in ``limit`` bytes, and how many lines were left out."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line.encode("utf-8", "replace")) + 1
        if size > limit:
            break
        kept.append(line)
    kept.reverse()
    return kept, len(lines) - len(kept)


def health_message(payload: Any) -> tuple[bool, str]:
    """(healthy, message) of a health answer (``{"status": "RUNNING", "version"}``)."""
    if isinstance(payload, Mapping) and str(payload.get("status", "")).upper() == "RUNNING":
        return True, f"cuOpt server is running (version {payload.get('version', 'unknown')})"
    return False, f"cuOpt server is not healthy: {str(payload)[:300]}"


def validated_only(notes: Sequence[str], has_answers: bool) -> bool:
    """Whether a result is a ``validation_only`` job's "valid" answer (no solution, a note saying
    ``Input is valid``): a success, which the solver-status rules alone would call a failure."""
    return not has_answers and any("input is valid" in str(n).lower() for n in notes)
