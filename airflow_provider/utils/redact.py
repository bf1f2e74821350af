"""Keep secrets out of logs, XComs and exception messages: one redactor for every path.

Presigned URLs carry their credential in the query string (``X-Amz-Signature``, GCS's
``X-Goog-Signature``, Azure's ``sig``, our emulator's ``X-Signature``...), and urllib3 quotes them
*without* a scheme (``Max retries exceeded with url: /up?X-Amz-Signature=…``). API keys, client
secrets, Basic headers and tokens are registered here as soon as a hook loads or derives them: with
Airflow's secrets masker (task and trigger logs) and with this module, whose :func:`redact_text`
removes them from the messages the provider builds itself (a service may echo a credential back).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

REDACTED = "<redacted>"
#: Known secret values (most recent last), bounded so a long-lived triggerer cannot grow it forever.
_KNOWN: OrderedDict[str, None] = OrderedDict()
_MAX_KNOWN = 1000
#: Airflow's masker refuses (and warns about) shorter values; they would also over-redact text.
MIN_SECRET_LENGTH = 5


def redact_url(url: str) -> str:
    """Return ``url`` without its query string, fragment and userinfo: safe to log.

    >>> redact_url("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Expires=900")
    'https://bucket.s3.amazonaws.com/k?<redacted>'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.hostname or ""
    if port:
        netloc = f"{netloc}:{port}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def mask_secrets(*values: str | None) -> None:
    """Register ``values`` with Airflow's secrets masker and with :func:`redact_text` (empty ones ignored).

    Works in tasks, triggers and plain Python; Airflow's masking is best-effort outside a task process.
    """
    fresh = [v for v in values if v and len(v) >= MIN_SECRET_LENGTH and v not in _KNOWN]
    for value in values:
        if value and value in _KNOWN:
            _KNOWN.move_to_end(value)
    if not fresh:
        return
    for value in fresh:
        _KNOWN[value] = None
    while len(_KNOWN) > _MAX_KNOWN:
        _KNOWN.popitem(last=False)
    try:
        from airflow.providers.common.compat.sdk import mask_secret
    except ImportError:  # pragma: no cover - very old Airflow
        return
    for value in fresh:
        mask_secret(value)


#: A URL with a scheme, or a bare path/host token followed by a query string (urllib3's style).
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+|[^\s'\"<>?=&]*\?[^\s'\"<>]+")
#: Credential-bearing query parameters, wherever they appear (even outside anything URL-shaped).
_SIGNED_PARAM = re.compile(
    r"(?i)\b((?:x-(?:amz|goog)-)?(?:signature|credential|security-token)|sig|token|access_token|"
    r"x-signature|api[_-]?key)=[^&\s'\"<>]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def _redact_url_token(match: re.Match[str]) -> str:
    token = match.group(0)
    if "://" in token:
        return redact_url(token)
    path, _, _query = token.partition("?")
    return f"{path}?{REDACTED}"


def redact_text(text: str, limit: int = 2000) -> str:
    """Redact every URL query string, signature parameter, auth header value and known secret in ``text``.

    The one redactor of the provider's log lines (retry warnings included) and exception messages.
    """
    text = str(text)
    for secret in reversed(_KNOWN):  # newest first; longer secrets are usually newer tokens
        if secret in text:
            text = text.replace(secret, "***")
    text = _URL_IN_TEXT.sub(_redact_url_token, text)
    text = _SIGNED_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    return text[:limit]


class RedactingFilter(logging.Filter):
    """Redacts the records of third-party loggers that print request URLs (urllib3's DEBUG lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        redacted = redact_text(message, limit=len(message) + 100)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTERED_LOGGERS = ("urllib3.connectionpool", "urllib3.response", "aiohttp.client")
_installed = False


def install_log_filter() -> None:
    """Attach :class:`RedactingFilter` to the HTTP libraries' loggers once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    for name in _FILTERED_LOGGERS:
        logging.getLogger(name).addFilter(RedactingFilter())
