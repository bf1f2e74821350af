"""Presigned URLs: HMAC-SHA256 over method, path and expiry with a per-process secret.

Like an S3 presigned URL, the query string is the credential: whoever holds the URL may do that one
method on that one path until it expires, with no Authorization header. Also like S3 with query
string auth, a request that carries an Authorization header as well is refused with 400 ("Only one
auth mechanism allowed"); that makes a client that leaks its API token to the storage host fail in
tests instead of in production.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time

from aiohttp import hdrs, web
from yarl import URL

from airflow_provider.emulator.errors import api_error

EXPIRES_PARAM = "X-Expires"
SIGNATURE_PARAM = "X-Signature"


class UrlSigner:
    """Makes and checks presigned URLs under ``public_url``."""

    def __init__(self, ttl: float, secret: bytes | None = None) -> None:
        self.ttl = ttl
        self._secret = secret or secrets.token_bytes(32)
        self.public_url: URL | None = None  # set once the server knows its port

    def _signature(self, method: str, path: str, expires: int) -> str:
        message = f"{method.upper()}\n{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, method: str, path: str) -> str:
        """An absolute URL allowing ``method`` on ``path`` for ``ttl`` seconds from now."""
        if self.public_url is None:
            raise RuntimeError("the public URL is not known before the server listens")
        expires = math.ceil(time.time() + self.ttl)  # valid for at least ttl seconds
        query = {EXPIRES_PARAM: str(expires), SIGNATURE_PARAM: self._signature(method, path, expires)}
        base = self.public_url.path.rstrip("/")
        return str(self.public_url.with_path(base + path).with_query(query))

    def verify(self, request: web.Request) -> None:
        """Raises the right HTTP error unless ``request`` is a valid, unexpired presigned request."""
        if hdrs.AUTHORIZATION in request.headers:
            raise api_error(
                web.HTTPBadRequest,
                "Only one auth mechanism allowed; presigned URLs must be sent without an "
                "Authorization header",
            )
        expires_text = request.query.get(EXPIRES_PARAM, "")
        signature = request.query.get(SIGNATURE_PARAM, "")
        if not expires_text.isdigit() or not signature:
            raise api_error(
                web.HTTPForbidden, f"missing {EXPIRES_PARAM} or {SIGNATURE_PARAM}: not a presigned URL"
            )
        expected = self._signature(request.method, request.path, int(expires_text))
        if not hmac.compare_digest(expected, signature):
            raise api_error(web.HTTPForbidden, "signature does not match: the presigned URL was altered")
        if int(expires_text) < time.time():
            raise api_error(web.HTTPForbidden, "the presigned URL has expired; request a new one")
