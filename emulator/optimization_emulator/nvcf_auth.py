"""NVCF authentication: API keys (SAK) and client-credentials access tokens (JWTs).

Two ways in, as on NVCF (shared/reference/cuopt_nvcf.md §2):

* an API key (the emulator's ``--api-key`` keys) sent as ``Authorization: Bearer <key>``; it has
  every scope and never expires;
* a client-credentials token from ``POST /token`` (``Authorization: Basic base64(id:secret)``,
  form ``grant_type=client_credentials`` and ``scope``, space- or comma-separated). The token is a
  real JWT (``header.payload.signature``, HS256 with a per-process secret) carrying ``sub``,
  ``scope``, ``iat`` and ``exp``, so clients can read its expiry; it is refused once expired.

Failures are ``application/problem+json`` 401s whose ``detail`` says what was wrong (no header,
unknown key, malformed or forged token, expired token); a token without the scope a call needs is
a 403. The token endpoint answers bad credentials with 401 and bad forms with 400, as problem+json
that also carries the OAuth ``error`` code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import hdrs, web

from optimization_emulator.errors import problem

SCOPES = frozenset({"invoke_function", "list_functions", "queue_details"})
ISSUER = "nvcf-emulator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenError(Exception):
    """Why a bearer token is not accepted (the message becomes the 401's ``detail``)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Makes and checks HS256 JWTs with a secret that lives as long as the process."""

    def __init__(self, ttl: float, secret: bytes | None = None) -> None:
        self.ttl = ttl
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._secret, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, subject: str, scopes: Iterable[str], now: float | None = None) -> str:
        now = time.time() if now is None else now
        header = {"alg": "HS256", "typ": "JWT", "kid": "nvcf-emulator"}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "azp": subject,
            "scope": " ".join(sorted(scopes)),
            "iat": int(now),
            "exp": int(now + self.ttl),
            "jti": str(uuid.uuid4()),
        }
        signing_input = ".".join(
            _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        return f"{signing_input}.{self._sign(signing_input)}"

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        """The token's claims; :class:`TokenError` if it is malformed, forged or expired."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("the bearer token is neither a known API key nor an access token")
        if not hmac.compare_digest(self._sign(f"{parts[0]}.{parts[1]}"), parts[2]):
            raise TokenError(
                "the access token's signature is invalid (forged, altered, or issued by "
                "another emulator process)"
            )
        try:
            claims = json.loads(_unb64(parts[1]))
            expires = float(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise TokenError("the access token's claims cannot be read") from None
        now = time.time() if now is None else now
        if expires <= now:
            raise TokenError(
                f"the access token expired {now - expires:.0f}s ago (exp {int(expires)}); request a new one "
                "from the token endpoint"
            )
        return claims


class NvcfAuth:
    """Checks bearer credentials on NVCF routes and serves ``POST /token``."""

    def __init__(self, api_keys: Iterable[str], clients: Mapping[str, str], issuer: TokenIssuer) -> None:
        self.api_keys = tuple(api_keys)
        self.clients = dict(clients)
        self.issuer = issuer
        self.on_token: Callable[[], None] = lambda: None  # stats hook
        self.on_rejected: Callable[[], None] = lambda: None

    def scopes_of(self, request: web.Request) -> frozenset[str]:
        """The scopes the request's bearer credential grants; a 401 problem when it grants none."""
        scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            self.on_rejected()
            raise problem(
                web.HTTPUnauthorized,
                "missing credentials: send 'Authorization: Bearer <API key or access token>'",
            )
        if any(hmac.compare_digest(token.encode(), key.encode()) for key in self.api_keys):
            return SCOPES
        try:
            claims = self.issuer.verify(token)
        except TokenError as exc:
            self.on_rejected()
            raise problem(web.HTTPUnauthorized, str(exc)) from None
        return frozenset(str(claims.get("scope", "")).split())

    def require(self, scope: str) -> Callable[[Handler], Handler]:
        """Decorates a handler so that it runs only for credentials with ``scope``."""

        def decorate(handler: Handler) -> Handler:
            async def checked(request: web.Request) -> web.StreamResponse:
                if scope not in self.scopes_of(request):
                    raise problem(
                        web.HTTPForbidden,
                        f"the access token lacks the '{scope}' scope; request it from the token endpoint",
                    )
                return await handler(request)

            return checked

        return decorate

    async def token(self, request: web.Request) -> web.Response:
        """``POST /token``: the OAuth 2.0 client-credentials grant."""
        client_id, secret = self._basic_credentials(request)
        known = self.clients.get(client_id)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            self.on_rejected()
            raise problem(web.HTTPUnauthorized, "Invalid Client ID or Client Secret", error="invalid_client")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            raise problem(
                web.HTTPBadRequest,
                "grant_type must be 'client_credentials'",
                error="unsupported_grant_type",
            )
        requested = {s for s in str(form.get("scope", "")).replace(",", " ").split() if s}
        if not requested or requested - SCOPES:
            raise problem(
                web.HTTPBadRequest,
                f"scope must name some of {', '.join(sorted(SCOPES))} (space- or comma-separated); "
                f"got {str(form.get('scope', ''))!r}",
                error="invalid_scope",
            )
        self.on_token()
        return web.json_response(
            {
                "access_token": self.issuer.issue(client_id, requested),
                "token_type": "bearer",
                "expires_in": int(self.issuer.ttl),
                "scope": " ".join(sorted(requested)),
            },
            headers={"Cache-Control": "no-store"},
        )

    def _basic_credentials(self, request: web.Request) -> tuple[str, str]:
        scheme, _, encoded = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        try:
            client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if scheme.lower() != "basic" or not sep:
            self.on_rejected()
            raise problem(
                web.HTTPUnauthorized,
                "send the client credentials as 'Authorization: Basic base64(client_id:client_secret)'",
                error="invalid_client",
            )
        return client_id, secret
