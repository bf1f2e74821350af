"""Presigned URLs: HMAC-SHA256 over method, path and expiry with a per-process secret.

Like an S3 presigned URL, the query string is the credential: whoever holds the URL may do that one
method on that one path until it expires, with no Authorization header. Also like S3 with query
string auth, a request that carries an Authorization header as well is refused with 400 ("Only one
auth mechanism allowed"); that makes a client that leaks its API token to the storage host fail in
tests instead of in production. A URL may also be signed over header values (NVCF asset uploads
sign ``Content-Type`` and ``x-amz-meta-nvcf-asset-description``): a request with other values is
refused with 403, as S3 refuses a request whose signed headers differ.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Mapping

from aiohttp import hdrs, web
from yarl import URL

from optimization_emulator.errors import api_error

EXPIRES_PARAM = "X-Expires"
SIGNATURE_PARAM = "X-Signature"
SIGNED_HEADERS_PARAM = "X-SignedHeaders"


def _canonical(headers: Mapping[str, str], names: str) -> str:
    """The signed part of the request headers: ``name:value`` lines in the order of ``names``."""
    return "\n".join(f"{name}:{headers.get(name, '').strip()}" for name in names.split(";") if name)


class UrlSigner:
    """Makes and checks presigned URLs under ``public_url``."""

    def __init__(self, ttl: float, secret: bytes | None = None) -> None:
        self.ttl = ttl
        self._secret = secret or secrets.token_bytes(32)
        self.public_url: URL | None = None  # set once the server knows its port

    def _signature(self, method: str, path: str, expires: int, headers: str = "") -> str:
        message = f"{method.upper()}\n{path}\n{expires}\n{headers}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(
        self, method: str, path: str, *, ttl: float | None = None, headers: Mapping[str, str] | None = None
    ) -> str:
        """An absolute URL allowing ``method`` on ``path`` for ``ttl`` seconds from now (default: the
        signer's ``ttl``). With ``headers``, the request must also carry exactly those header values
        (like S3's signed headers): their names travel in the URL, their values in the signature."""
        if self.public_url is None:
            raise RuntimeError("the public URL is not known before the server listens")
        lifetime = self.ttl if ttl is None else ttl
        expires = math.ceil(time.time() + lifetime)  # valid for at least ttl seconds
        names = ";".join(sorted(name.lower() for name in headers or {}))
        values = _canonical({name.lower(): value for name, value in (headers or {}).items()}, names)
        query = {EXPIRES_PARAM: str(expires)}
        if names:
            query[SIGNED_HEADERS_PARAM] = names
        query[SIGNATURE_PARAM] = self._signature(method, path, expires, values)
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
        names = request.query.get(SIGNED_HEADERS_PARAM, "")
        headers = _canonical(
            {name: request.headers.get(name, "") for name in names.split(";") if name}, names
        )
        expected = self._signature(request.method, request.path, int(expires_text), headers)
        if not hmac.compare_digest(expected, signature):
            detail = (
                f" or the headers it was signed with ({names.replace(';', ', ')}) differ" if names else ""
            )
            raise api_error(
                web.HTTPForbidden, f"signature does not match: the presigned URL was altered{detail}"
            )
        if int(expires_text) < time.time():
            raise api_error(web.HTTPForbidden, "the presigned URL has expired; request a new one")
