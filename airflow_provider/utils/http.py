"""Pure HTTP helpers shared by the sync (requests) and async (aiohttp) hooks: bounds, error mapping.

Every decision about an HTTP answer is made here once, so the worker's requests path
(``utils/sync_http.py``) and the triggerer's aiohttp path (``utils/async_http.py``) end the same way
on the same answers: how much of a body may be read, what an error status becomes, how a JSON body
is parsed.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider import __version__
from airflow_provider.exceptions import (
    CallTimeoutError,
    CertificateError,
    MalformedResponseError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    http_error_class,
)
from airflow_provider.utils.redact import redact_text
from airflow_provider.utils.retry import is_certificate_error

USER_AGENT = f"airflow-provider-optimization/{__version__}"

#: API answers (status, lists, tokens, NVCF inline results of at most ~5 MiB) read into memory.
MAX_API_BODY_BYTES = 64 * 1024 * 1024
#: Error bodies only feed a message.
MAX_ERROR_BODY_BYTES = 64 * 1024
TRANSFER_READ_TIMEOUT = 300.0
#: A presigned upload or download as a whole (500 MB at ~1 MB/s); waits cap it at their deadline.
TRANSFER_TOTAL_TIMEOUT = 2 * 3600.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds: ``connect``, ``read`` (between two bytes) and ``total`` (connect + headers + body).

    ``total`` bounds one HTTP call as a whole, so an answer trickled a byte at a time cannot outlive it
    (a read timeout alone restarts with every byte).
    """

    connect: float = 10.0
    read: float = 60.0
    total: float = 120.0

    @classmethod
    def of(cls, value: Timeouts | tuple[float, ...] | None) -> Timeouts:
        """Accept ``(connect, read)`` or ``(connect, read, total)`` tuples as well."""
        if value is None:
            return cls()
        if isinstance(value, Timeouts):
            return value
        connect, read, *rest = (float(v) for v in value)
        return cls(connect, read, rest[0] if rest else max(cls.total, connect + 2 * read))

    def for_call(self, read_timeout: float | None = None) -> float:
        """The total bound of one call; a long poll (``read_timeout`` above ``read``: the service holds
        the call that long on purpose) gets that much more time, never less than ``total``."""
        if read_timeout is None:
            return self.total
        return max(self.total, read_timeout + self.connect)

    def long_poll_read(self, poll_seconds: float) -> float:
        """Read timeout of a long poll the service holds for ``poll_seconds``: the hold plus ``read``."""
        return poll_seconds + self.read


DEFAULT_TIMEOUTS = Timeouts()
#: Kept for callers that pass ``(connect, read)``.
DEFAULT_TIMEOUT = (DEFAULT_TIMEOUTS.connect, DEFAULT_TIMEOUTS.read)


@dataclass(frozen=True)
class TLSSettings:
    """TLS verification: on by default; ``ca_bundle`` replaces the default trust store."""

    verify: bool = True
    ca_bundle: str | None = None

    @property
    def requests_verify(self) -> bool | str:
        """The value for requests' ``verify=``."""
        if not self.verify:
            return False
        return self.ca_bundle or True

    @classmethod
    def from_extras(cls, extras: dict) -> TLSSettings:
        verify = extras.get("verify_ssl", extras.get("verify", True))
        if isinstance(verify, str):
            verify = verify.strip().lower() not in ("false", "0", "no", "off")
        return cls(
            verify=bool(verify) if verify is not None else True, ca_bundle=extras.get("ca_bundle") or None
        )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def error_detail(body: bytes | str, limit: int = 1000) -> str:
    """The human part of an error body: ``detail``/``error``/``message``/``title`` of a JSON body
    (NVCF uses RFC 7807 problem+json, Nextmv ``{"error": ...}``), else the raw text, truncated."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:limit]
    if isinstance(payload, dict):
        parts = [str(payload[k]) for k in ("title", "detail", "error", "message") if payload.get(k)]
        if parts:
            return ": ".join(dict.fromkeys(parts))[:limit]
    return text[:limit]


@dataclass(frozen=True)
class Answer:
    """A parsed HTTP answer: status, headers and JSON payload (``{}`` for an empty body)."""

    status: int
    headers: Mapping[str, str]
    payload: Any


def parse_json_answer(body: bytes, service: str, what: str) -> Any:
    """JSON of a response body; garbled bodies raise :class:`MalformedResponseError` (retryable reads)."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MalformedResponseError(f"{service} returned malformed JSON for {what}: {exc}") from exc


def body_cap(status: int, *, error_envelopes: bool = False, cap: int = MAX_API_BODY_BYTES) -> int:
    """How many bytes of an answer with ``status`` may be read: ``cap`` for success (and for error
    answers that carry an outcome envelope, NVCF's), :data:`MAX_ERROR_BODY_BYTES` for other errors."""
    return cap if status < 400 or error_envelopes else MAX_ERROR_BODY_BYTES


def check_declared_length(headers: Mapping[str, str], cap: int, service: str, what: str) -> None:
    """Refuse before reading when ``Content-Length`` already announces more than ``cap`` bytes."""
    declared = headers.get("Content-Length") or headers.get("content-length")
    if declared and declared.strip().isdigit() and int(declared) > cap:
        raise too_large(service, what, cap, f"it declares {int(declared):,} bytes")


def too_large(service: str, what: str, cap: int, how: str = "") -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"{service} answered {what} with more than {cap:,} bytes{' (' + how + ')' if how else ''}; "
        "stopped reading (the answer is not what this API sends: check the connection's host)"
    )


def answer_or_raise(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    service: str,
    method: str,
    target: str,
    what: str,
    accept: Callable[[int, Any], bool] | None = None,
    parse: bool = True,
    decode: Callable[[int, Mapping[str, str], bytes], Any] | None = None,
) -> Answer:
    """The one mapping of a read answer: JSON-parsed :class:`Answer`, or a
    :class:`~airflow_provider.exceptions.ServiceHTTPError`
    with the service's own words and ``Retry-After``. ``accept`` lets an error status whose body is
    a meaningful outcome through (NVCF error envelopes). ``decode`` replaces the JSON parsing (a
    service whose answers must be checked before they are parsed: the self-hosted cuOpt server's
    Content-Type rules); it runs inside the retry loop, so what it raises is judged like the rest."""
    if decode is not None:
        payload = decode(status, headers, body)
        parse = True
    else:
        payload = parse_json_answer(body, service, what) if parse and (status < 400 or accept) else None
    if status >= 400 and not (accept and accept(status, payload)):
        raise http_error_class(status)(
            service,
            method,
            target,
            status,
            error_detail(body),
            retry_after=parse_retry_after(headers.get("Retry-After") or headers.get("retry-after")),
        )
    return Answer(status, headers, payload if parse else body)


def transport_error(service: str, what: str, exc: BaseException) -> Exception:
    """A transport failure (requests or aiohttp) as the provider reports it: certificate refusals as
    :class:`CertificateError` (not retried), everything else as :class:`ServiceUnavailableError`;
    URLs and secrets redacted. The provider's own errors pass through unchanged."""
    if isinstance(exc, (CallTimeoutError, ServiceUnavailableError)):
        return exc
    text = redact_text(str(exc), 500)
    if is_certificate_error(exc):
        return CertificateError(
            f"{service} {what}: the TLS certificate was refused ({text}). Set the connection's ca_bundle to "
            "the CA that signed it (or fix the host name); verify_ssl=false turns checking off (not recommended)."
        )
    return ServiceUnavailableError(f"{service} {what} failed: {type(exc).__name__}: {text}")
