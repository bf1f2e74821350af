"""Pure HTTP helpers shared by the sync (requests) and async (aiohttp) hooks."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider import __version__

USER_AGENT = f"airflow-provider-optimization/{__version__}"

#: (connect, read) seconds for API calls; uploads and downloads use their own read timeout.
DEFAULT_TIMEOUT = (10.0, 60.0)
TRANSFER_READ_TIMEOUT = 300.0


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
    from airflow_provider.exceptions import MalformedResponseError

    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MalformedResponseError(f"{service} returned malformed JSON for {what}: {exc}") from exc
