"""NVCF client-credentials tokens (SSA): the request, the answer, and an in-memory cache. No I/O here.

The sync and the async cuOpt hooks build the token request with :func:`token_request` and read
the answer with :meth:`Token.from_token_response`, so both fetch, mask and refresh tokens the same
way; only the HTTP call differs.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider.exceptions import ProtocolError
from airflow_provider.utils.redact import mask_secrets

#: SSA client-credentials token endpoint the thin client uses by default (deprecated by NVIDIA).
DEFAULT_TOKEN_URL = "https://tbyyhdy8-opimayg5nq78mx1wblbi8enaifkmlqrm8m.ssa.nvidia.com/token"
TOKEN_SCOPES = "invoke_function list_functions"
#: Refresh a JWT this long before it expires (the thin client pads 120 s).
TOKEN_REFRESH_LEAD = 120.0


def token_request_form() -> dict[str, str]:
    """The form body of the token request."""
    return {"grant_type": "client_credentials", "scope": TOKEN_SCOPES}


def token_request_headers(client_id: str, client_secret: str) -> dict[str, str]:
    """The Basic header of the token request; its value (base64 of ``id:secret``) is registered with
    the secrets masker, which knows only the secret itself otherwise."""
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    mask_secrets(basic)
    return {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Token:
    """A bearer token and its absolute expiry (epoch seconds; ``inf`` for API keys)."""

    value: str
    expires_at: float

    def fresh(self, now: float, lead: float = TOKEN_REFRESH_LEAD) -> bool:
        """Valid for longer than the refresh lead (capped at half the token's life for short TTLs)."""
        return self.expires_at - now > lead

    @classmethod
    def from_token_response(cls, payload: Any, now: float) -> Token:
        """Read a token answer (the token is registered with the secrets masker at once)."""
        value = payload.get("access_token") if isinstance(payload, Mapping) else None
        if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
            raise ProtocolError("the token endpoint returned no usable access_token")
        mask_secrets(value)
        try:
            ttl = float(payload.get("expires_in", 0))
        except (TypeError, ValueError, OverflowError):
            raise ProtocolError(
                f"token endpoint returned a bad expires_in: {str(payload.get('expires_in'))[:40]!r}"
            ) from None
        if not math.isfinite(ttl):
            raise ProtocolError(f"token endpoint returned a bad expires_in: {ttl!r}")
        return cls(value, now + max(0.0, ttl))


def refresh_lead(ttl: float) -> float:
    """How early to refresh a token of lifetime ``ttl``: 120 s, or a quarter of short lifetimes."""
    return min(TOKEN_REFRESH_LEAD, max(ttl, 0.0) / 4)


class TokenCache:
    """In-memory JWT cache (never written to disk, unlike the thin client's token_cache.json).

    Checked before *every* call: a token is replaced once it is within its refresh lead of expiry,
    so a long poll never starts with a token about to lapse.
    """

    def __init__(self) -> None:
        self._token: Token | None = None
        self._lead = TOKEN_REFRESH_LEAD

    def current(self, now: float) -> str | None:
        """The cached token if it is still fresh at ``now``."""
        if self._token is not None and self._token.fresh(now, self._lead):
            return self._token.value
        return None

    def store(self, token: Token, now: float) -> None:
        """Keep a new token (its refresh lead follows its lifetime)."""
        self._token = token
        self._lead = refresh_lead(token.expires_at - now)

    def invalidate(self) -> None:
        """Forget the token (after a 401)."""
        self._token = None
