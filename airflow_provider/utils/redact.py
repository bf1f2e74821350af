"""Keep secrets out of logs, XComs and exception messages.

Presigned URLs carry their credential in the query string (``X-Amz-Signature``, our emulator's
``X-Signature``...). We never log a query string of a presigned URL; API keys, client secrets and
tokens are registered with Airflow's secrets masker as soon as a hook loads them.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """Return ``url`` without its query string, fragment and userinfo: safe to log.

    >>> redact_url("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Expires=900")
    'https://bucket.s3.amazonaws.com/k?<redacted>'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def mask_secrets(*values: str | None) -> None:
    """Register ``values`` with Airflow's secrets masker (no-op for empty values).

    Works in tasks, triggers and plain Python; masking is best-effort outside a task process.
    """
    try:
        from airflow.providers.common.compat.sdk import mask_secret
    except ImportError:  # pragma: no cover - very old Airflow
        return
    for value in values:
        if value and len(value) >= 5:  # Airflow refuses (and warns about) shorter secrets
            mask_secret(value)


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def redact_text(text: str, limit: int = 2000) -> str:
    """Redact every URL inside free text (exception messages quote full presigned URLs)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)[:limit]
