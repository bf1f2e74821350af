"""The aiohttp side of the hooks' HTTP plumbing, for the triggerer: the twin of ``utils/sync_http.py``.

Same retry policy, same body caps, same error mapping (``utils/http.py``) and the same total time
bound per call (``aiohttp.ClientTimeout(total=…)`` covers connect, headers and body), so a trigger
and a worker report the same failure the same way. :class:`AsyncApi` is the one request loop of the
async hooks.
"""

from __future__ import annotations

import logging
import ssl as _ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from airflow_provider.exceptions import CallTimeoutError
from airflow_provider.utils import http
from airflow_provider.utils.http import (
    MAX_API_BODY_BYTES,
    Answer,
    Timeouts,
    answer_or_raise,
    body_cap,
    check_declared_length,
    too_large,
)
from airflow_provider.utils.retry import RetryPolicy, async_retrying

_READ_CHUNK = 64 * 1024


async def read_bounded(response: aiohttp.ClientResponse, cap: int, service: str, what: str) -> bytes:
    """The body of ``response``, refusing past ``cap`` bytes without reading on."""
    check_declared_length(response.headers, cap, service, what)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        body += chunk
        if len(body) > cap:
            raise too_large(service, what, cap)
    return bytes(body)


def transport_error(service: str, what: str, exc: BaseException) -> Exception:
    """aiohttp's transport failures as the provider reports them (:func:`http.transport_error`);
    asyncio's bare ``TimeoutError`` is the call's total bound running out."""
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        return CallTimeoutError(f"{service} {what}: no complete answer within the call's time bound")
    return http.transport_error(service, what, exc)


@dataclass
class AsyncApi:
    """One service's API over a shared ``aiohttp.ClientSession``: the async hooks' request loop.

    :param auth: awaited before every attempt for extra headers (fresh tokens).
    :param on_unauthorized: after a 401, awaited once; True means "credentials renewed, try again".
    """

    service: str
    policy: RetryPolicy
    timeouts: Timeouts
    logger: logging.Logger | Any
    auth: Callable[[], Awaitable[Mapping[str, str]]] | None = None
    on_unauthorized: Callable[[], Awaitable[bool]] | None = None

    async def call(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        *,
        target: str,
        what: str,
        idempotent: bool = True,
        headers: Mapping[str, str] | None = None,
        data: bytes | Mapping[str, str] | None = None,
        accept: Callable[[int, Any], bool] | None = None,
        decode: Callable[[int, Mapping[str, str], bytes], Any] | None = None,
        cap: int = MAX_API_BODY_BYTES,
        read_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """One call under the shared retry policy; body capped, parsed as JSON (empty body → ``{}``).

        Each attempt is bounded by ``timeouts.total`` (longer for long polls: ``read_timeout``) and by
        ``deadline`` (epoch seconds), which also ends the retries.
        """

        async def attempt() -> Answer:
            renewed = False
            while True:
                sent = {**(await self.auth() if self.auth else {}), **(headers or {})}
                total = self.timeouts.for_call(read_timeout)
                if deadline is not None:
                    total = min(total, max(1.0, deadline - time.time()))
                timeout = aiohttp.ClientTimeout(
                    total=total,
                    sock_connect=self.timeouts.connect,
                    sock_read=read_timeout or self.timeouts.read,
                )
                async with session.request(method, url, headers=sent, data=data, timeout=timeout) as response:
                    status = response.status
                    if (
                        status == 401
                        and self.on_unauthorized
                        and not renewed
                        and await self.on_unauthorized()
                    ):
                        renewed = True
                        continue
                    limit = body_cap(status, error_envelopes=accept is not None, cap=cap)
                    body = await read_bounded(response, limit, self.service, what)
                    resp_headers = response.headers
                return answer_or_raise(
                    status,
                    resp_headers,
                    body,
                    service=self.service,
                    method=method,
                    target=target,
                    what=what,
                    accept=accept,
                    decode=decode,
                )

        try:
            async for retry in async_retrying(
                self.policy,
                idempotent=idempotent,
                logger=self.logger,
                what=f"{self.service} {what}",
                deadline=deadline,
            ):
                with retry:
                    return await attempt()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(self.service, what, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def ssl_option(verify: bool, ca_bundle: str | None) -> Any:
    """aiohttp's ``ssl=`` value: default verification, off, or a context from a CA bundle."""
    if not verify:
        return False
    if ca_bundle:
        return _ssl.create_default_context(cafile=ca_bundle)
    return True
