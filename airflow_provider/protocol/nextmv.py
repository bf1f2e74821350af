"""The Nextmv Cloud API as the provider speaks it: paths, limits, bodies, statuses. No I/O here.

Facts come from the official ``nextmv`` SDK 1.13 as observed on the wire (see
``docs/nextmv.md``). Deliberate differences from the SDK: the endpoint's base path is kept even
without a trailing slash, and option values are stringified the same way but never silently.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import quote

from airflow_provider.exceptions import (
    CredentialsError,
    InvalidInputError,
    MalformedResponseError,
    ProtocolError,
)
from airflow_provider.utils.http import USER_AGENT, TLSSettings
from airflow_provider.utils.ids import safe_id

DEFAULT_ENDPOINT = "https://api.cloud.nextmv.io"
DEFAULT_CONSOLE_URL = "https://cloud.nextmv.io"

#: Inline input/output limit (Nextmv docs: 5 MB; the SDK uses 5 MiB: 5,242,880 B stays inline).
MAX_INLINE_BYTES = 5 * 1024 * 1024
#: Largest upload through a presigned URL (Nextmv docs: 500 MB).
MAX_UPLOAD_BYTES = 500_000_000
#: Largest output download. Nextmv documents 100 MB; like its 5 MB inline limit (5 MiB in the SDK),
#: "MB" may well mean MiB, so the bound is 100 MiB: a 4.9 % margin, never the old 2x (200 MB).
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024

INPUT_FORMATS = ("json", "text", "multi-file", "csv-archive")
ARCHIVE_FORMATS = frozenset({"multi-file", "csv-archive"})


class RunStatus(str, Enum):
    """``status_v2`` of a Nextmv run. The one status enum of operator, sensor and trigger."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    NONE = "none"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED)


#: The legacy v1 ``status`` field, used when ``status_v2`` is missing (older API versions).
_LEGACY_STATUS = {"running": RunStatus.RUNNING, "succeeded": RunStatus.SUCCEEDED, "failed": RunStatus.FAILED}


@dataclass(frozen=True)
class NextmvSettings:
    """Everything a hook needs from the Airflow connection, resolved once."""

    api_key: str
    endpoint: str = DEFAULT_ENDPOINT
    console_url: str = DEFAULT_CONSOLE_URL
    tls: TLSSettings = field(default_factory=TLSSettings)

    @classmethod
    def from_connection(
        cls, host: str | None, password: str | None, extras: Mapping[str, Any]
    ) -> NextmvSettings:
        """Resolve an Airflow connection (type ``nextmv``); a missing API key fails here, clearly."""
        api_key = (password or extras.get("api_key") or "").strip()
        if not api_key:
            raise CredentialsError(
                "The Nextmv connection has no API key: put it in the connection's password field "
                "(conn type 'nextmv')."
            )
        return cls(
            api_key=api_key,
            endpoint=normalize_endpoint(host or extras.get("endpoint") or DEFAULT_ENDPOINT),
            console_url=(extras.get("console_url") or DEFAULT_CONSOLE_URL).rstrip("/"),
            tls=TLSSettings.from_extras(dict(extras)),
        )

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        return f"{self.endpoint}/{path.lstrip('/')}"

    @property
    def headers(self) -> dict[str, str]:
        """The headers of every API call (the API key; JSON bodies both ways)."""
        return {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }


def normalize_endpoint(host: str) -> str:
    """``api.cloud.nextmv.io`` → ``https://api.cloud.nextmv.io``; keep any base path, drop the trailing slash."""
    host = host.strip()
    if "://" not in host:
        host = "https://" + host
    return host.rstrip("/")


# ---------------------------------------------------------------------------------------------- paths
def app_path(app_id: str) -> str:
    """``v1/applications/{app_id}``; every id is validated (no ``..``, ``/``, control characters)."""
    return f"v1/applications/{quote(safe_id(app_id, 'Nextmv app_id'), safe='')}"


def runs_path(app_id: str) -> str:
    """The app's runs collection."""
    return f"{app_path(app_id)}/runs"


def upload_url_path(app_id: str) -> str:
    """Where presigned upload URLs are requested."""
    return f"{runs_path(app_id)}/uploadurl"


def run_path(app_id: str, run_id: str) -> str:
    """One run (``run_id`` validated like every id)."""
    return f"{runs_path(app_id)}/{quote(safe_id(run_id, 'Nextmv run_id'), safe='')}"


def run_metadata_path(app_id: str, run_id: str) -> str:
    """A run's status and metadata."""
    return f"{run_path(app_id, run_id)}/metadata"


def run_output_path(app_id: str, run_id: str) -> str:
    """A run's output (inline, or ``?format=url`` for a presigned download)."""
    return f"{run_path(app_id, run_id)}/output"


def run_cancel_path(app_id: str, run_id: str) -> str:
    """PATCH here cancels a run."""
    return f"{run_path(app_id, run_id)}/cancel"


def run_logs_path(app_id: str, run_id: str) -> str:
    """A run's log (what the app wrote to stderr)."""
    return f"{run_path(app_id, run_id)}/logs"


def console_run_url(console_url: str, app_id: str, run_id: str) -> str:
    """The run's page in the Nextmv console (what the SDK links to)."""
    app, run = safe_id(app_id, "Nextmv app_id"), safe_id(run_id, "Nextmv run_id")
    return f"{console_url.rstrip('/')}/app/{quote(app, safe='')}/run/{quote(run, safe='')}?view=details"


# ---------------------------------------------------------------------------------------------- bodies
def stringify_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """Nextmv options must be ``dict[str, str]``; non-strings become compact JSON (``4`` → ``"4"``), as in the SDK."""
    if not options:
        return {}
    if not isinstance(options, Mapping):
        raise InvalidInputError(
            f"options must be a dict of option name to value, got {type(options).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in options.items():
        if isinstance(value, str):
            out[str(key)] = value
        else:
            try:
                out[str(key)] = json.dumps(value, separators=(",", ":"))
            except TypeError as exc:
                raise InvalidInputError(f"option {key!r} is not JSON-serializable: {exc}") from exc
    return out


def default_configuration(input_format: str) -> dict[str, Any]:
    """The ``configuration.format`` the SDK derives when the caller gives none."""
    output = (
        "multi-file"
        if input_format == "multi-file"
        else ("csv-archive" if input_format == "csv-archive" else "json")
    )
    return {"format": {"input": {"type": input_format}, "output": {"type": output}}}


def run_body(
    *,
    input_json: bytes | None = None,
    upload_id: str | None = None,
    name: str | None = None,
    description: str | None = None,
    options: Mapping[str, Any] | None = None,
    configuration: Mapping[str, Any] | None = None,
    input_format: str = "json",
) -> bytes:
    """The POST ``/runs`` body, serialised once as compact JSON: exactly one input source, optional
    keys only when set.

    ``input_json`` (the input already serialised by :func:`compact_json` / :func:`serialize_json`)
    is spliced in verbatim, so the bytes the 5 MiB rule measured are the bytes on the wire (the SDK's
    rule; re-encoding with requests' ``json=`` would add a space after every separator).
    """
    fields: dict[str, Any] = {}
    if name:
        fields["name"] = name
    if description:
        fields["description"] = description
    if opts := stringify_options(options):
        fields["options"] = opts
    fields["configuration"] = dict(configuration) if configuration else default_configuration(input_format)
    if upload_id:
        return serialize_json({"upload_id": upload_id, **fields})
    if input_json is None:
        raise InvalidInputError("a run needs an input or an upload id")
    rest = serialize_json(fields)  # b'{"configuration":...}', never empty: configuration is always set
    return b'{"input":' + input_json + b"," + rest[1:]


def serialize_json(value: Any) -> bytes:
    """Compact JSON exactly as the SDK sends it (``separators=(",", ":")``, ASCII-escaped)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"input is not JSON-serializable: {exc}") from exc


def compact_json(data: bytes, what: str) -> bytes:
    """A JSON document (a small input file) re-serialised compactly; invalid JSON is the task's error."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InvalidInputError(
            f"{what} is not valid JSON: {exc}. Fix the file, or set input_format='text'."
        ) from exc
    return serialize_json(value)


class Transfer(str, Enum):
    """How a run's input reaches Nextmv."""

    INLINE = "inline"
    UPLOAD = "upload"


def check_input_format(input_format: str) -> str:
    """The one rule for ``input_format`` (operator at construction, hook at use)."""
    if input_format not in INPUT_FORMATS:
        raise InvalidInputError(
            f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}"
        )
    return input_format


def choose_transfer(size: int, input_format: str = "json") -> Transfer:
    """Inline up to 5 MiB of (compact) JSON; everything else through a presigned upload; refuse > 500 MB."""
    check_input_format(input_format)
    if size > MAX_UPLOAD_BYTES:
        raise InvalidInputError(
            f"Input is {size:,} bytes; Nextmv accepts at most {MAX_UPLOAD_BYTES:,} bytes (500 MB) per run. "
            "Split the problem or reduce its size."
        )
    if input_format == "json" and size <= MAX_INLINE_BYTES:
        return Transfer.INLINE
    return Transfer.UPLOAD


# ---------------------------------------------------------------------------------------------- responses
def parse_json_body(body: bytes | str, what: str) -> Any:
    """JSON of an answer; a garbled one is :class:`MalformedResponseError` (retried for reads)."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MalformedResponseError(f"Nextmv returned malformed JSON for {what}: {exc}") from exc


def require_str(payload: Any, key: str, what: str) -> str:
    """A non-empty string field of an answer, or :class:`ProtocolError`."""
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"Nextmv response to {what} has no {key!r}: {str(payload)[:300]}")
    return value


def require_id(payload: Any, key: str, what: str) -> str:
    """An id field of an answer, validated before it names a path or a file (hostile ids refused)."""
    return safe_id(require_str(payload, key, what), f"Nextmv {key} in the answer to {what}")


def run_status(metadata_response: Mapping[str, Any]) -> RunStatus:
    """Map a ``/metadata`` (or run) response to :class:`RunStatus`; unknown values are an error, never success."""
    meta = metadata_response.get("metadata") if isinstance(metadata_response, Mapping) else None
    if not isinstance(meta, Mapping):
        raise ProtocolError(f"Nextmv run metadata has no 'metadata' object: {str(metadata_response)[:300]}")
    raw = meta.get("status_v2")
    if raw is None:
        legacy = meta.get("status")
        if isinstance(legacy, str) and legacy in _LEGACY_STATUS:
            return _LEGACY_STATUS[legacy]
        raise ProtocolError(
            f"Nextmv run metadata has neither status_v2 nor a known status: {str(meta)[:300]}"
        )
    try:
        return RunStatus(raw) if isinstance(raw, str) else RunStatus(None)
    except ValueError:
        raise ProtocolError(f"Nextmv returned an unknown run status {raw!r}") from None


def run_error_message(metadata_response: Mapping[str, Any]) -> str:
    """The service's own words about why a run failed (``metadata.error`` + ``error_log``)."""
    meta = metadata_response.get("metadata") if isinstance(metadata_response, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    parts = []
    if error := meta.get("error"):
        parts.append(str(error))
    error_log = metadata_response.get("error_log") if isinstance(metadata_response, Mapping) else None
    if isinstance(error_log, Mapping):
        for key in ("error", "stderr"):
            text = error_log.get(key)
            if text and str(text) not in parts:
                parts.append(str(text)[-2000:])
    return "\n".join(parts) or "no error message was given by Nextmv"


@dataclass(frozen=True)
class OutputInfo:
    """How a finished run's output must be fetched."""

    format: str
    size: int

    @property
    def via_url(self) -> bool:
        """The SDK rule: non-JSON or > 5 MiB outputs only come through ``format=url``."""
        return self.format != "json" or self.size > MAX_INLINE_BYTES

    @property
    def is_archive(self) -> bool:
        """Multi-file formats arrive as a tar.gz to unpack."""
        return self.format in ARCHIVE_FORMATS


def output_info(metadata_response: Mapping[str, Any]) -> OutputInfo:
    """Format and size of a finished run's output from its metadata; malformed fields are a
    :class:`ProtocolError` (never an AttributeError or OverflowError)."""
    meta = metadata_response.get("metadata") if isinstance(metadata_response, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    fmt: Any = "json"
    formats = meta.get("format")
    if formats is not None:
        output = formats.get("output") if isinstance(formats, Mapping) else None
        fmt = output.get("type") if isinstance(output, Mapping) else None
        if fmt is None:
            fmt = "json"
        if not isinstance(fmt, str) or not fmt:
            raise ProtocolError(f"Nextmv run metadata has an unreadable output format: {str(formats)[:200]}")
    raw_size = meta.get("output_size")
    if raw_size in (None, ""):
        return OutputInfo(format=fmt, size=0)
    try:
        size = float(raw_size)
    except (TypeError, ValueError, OverflowError):
        raise ProtocolError(
            f"Nextmv run metadata has an unreadable output_size {str(raw_size)[:50]!r}"
        ) from None
    if not math.isfinite(size) or size < 0 or size != int(size):
        raise ProtocolError(f"Nextmv run metadata has an impossible output_size {str(raw_size)[:50]!r}")
    return OutputInfo(format=fmt, size=int(size))


# ---------------------------------------------------------------------------------------------- markers
#: How a run created by this provider says which Airflow task (and which submission) created it.
#: It lives in the run's description, the one free-text field Nextmv lists runs with. It lets the
#: provider tell, after a lost response to POST /runs, whether the run was created after all, and
#: find a task's run again on a retry when Airflow has no task state store (before 3.3).
_MARKER = re.compile(r"\[airflow-task ([0-9a-f]{16}) submission ([0-9a-f]{12})\]")


def task_marker(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """A stable 16-hex-digit id of an Airflow task instance (same across tries)."""
    key = f"{dag_id}\x1f{task_id}\x1f{run_id}\x1f{map_index}".encode()
    return hashlib.sha256(key).hexdigest()[:16]


def new_submission_id() -> str:
    return uuid.uuid4().hex[:12]


def marked_description(description: str | None, task: str, submission: str) -> str:
    tag = f"[airflow-task {task} submission {submission}]"
    return f"{description} {tag}" if description else tag


def runs_with_marker(
    runs: list[Mapping[str, Any]], *, task: str, submission: str | None = None
) -> list[dict]:
    """Runs whose description carries the marker (optionally of one submission), newest first.

    A matching run must carry a usable ``id``: one that does not is a :class:`ProtocolError`, never
    a reason to submit again (the run exists).
    """
    found = []
    for run in runs:
        if not isinstance(run, Mapping):
            continue
        match = _MARKER.search(str(run.get("description") or ""))
        if match and match.group(1) == task and (submission is None or match.group(2) == submission):
            found.append({**run, "id": require_id(run, "id", "list runs")})
    return sorted(found, key=lambda r: str(r.get("created_at") or ""), reverse=True)
