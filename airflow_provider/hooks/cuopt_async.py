"""Asynchronous NVIDIA cuOpt (NVCF) hook (aiohttp) for the triggerer.

Does what a trigger needs: keep a token fresh, long-poll a request's status, store a fulfilled
result (downloading a large-result zip without credentials), delete the input asset. Storing uses
the same synchronous functions as the worker (``hooks/_cuopt_results.py``) run in a thread, so
the event loop never blocks on disk or object-store writes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from airflow_provider.exceptions import RequestGoneError, ServiceHTTPError, ServiceUnavailableError
from airflow_provider.hooks._cuopt_results import StoredResult, store_inline_result, store_zip_result
from airflow_provider.protocol import cuopt as proto
from airflow_provider.utils import async_sessions, uris
from airflow_provider.utils.async_http import request_json, ssl_option
from airflow_provider.utils.http import DEFAULT_TIMEOUT, TRANSFER_READ_TIMEOUT, USER_AGENT
from airflow_provider.utils.redact import mask_secrets, redact_text, redact_url
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger(__name__)
SERVICE = "NVCF"


class CuOptAsyncHook:
    """Use as ``async with CuOptAsyncHook(conn_id) as hook: await hook.poll(req_id)``."""

    def __init__(
        self,
        cuopt_conn_id: str = "cuopt_default",
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.cuopt_conn_id = cuopt_conn_id
        self.retry_policy = retry_policy
        self.timeout = timeout
        self._settings: proto.CuOptSettings | None = None
        self._session: aiohttp.ClientSession | None = None
        self._transfer: aiohttp.ClientSession | None = None
        self._keys: tuple = ()
        self._tokens = proto.TokenCache()
        self._token_lock = asyncio.Lock()

    async def settings(self) -> proto.CuOptSettings:
        if self._settings is None:
            self._settings = await async_sessions.cached_settings(
                ("cuopt", self.cuopt_conn_id), self._load_settings
            )
        return self._settings

    async def _load_settings(self) -> proto.CuOptSettings:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.cuopt_conn_id)
        extras = await get_async_extra_dejson(conn)
        settings = proto.CuOptSettings.from_connection(conn.host, conn.password, extras)
        mask_secrets(settings.api_key, settings.client_secret)
        return settings

    async def _sessions(self) -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
        """The loop-wide shared API and transfer sessions for this endpoint (``utils/async_sessions.py``).

        Long polls hold a connection for up to their window, so the API pool is not capped per host;
        presigned downloads use a separate session that never carries credentials.
        """
        if self._session is None or self._transfer is None:
            settings = await self.settings()
            ssl = await asyncio.to_thread(ssl_option, settings.tls.verify, settings.tls.ca_bundle)
            self._keys = (
                ("nvcf-api", settings.endpoint, settings.tls, self.timeout),
                ("nvcf-transfer", settings.tls),
            )

            def api() -> aiohttp.ClientSession:
                return aiohttp.ClientSession(
                    headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                    timeout=aiohttp.ClientTimeout(sock_connect=self.timeout[0], sock_read=self.timeout[1]),
                    connector=aiohttp.TCPConnector(ssl=ssl, limit=0, limit_per_host=0, keepalive_timeout=60),
                )

            def transfer() -> aiohttp.ClientSession:
                return aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(
                        sock_connect=self.timeout[0], sock_read=TRANSFER_READ_TIMEOUT
                    ),
                    connector=aiohttp.TCPConnector(ssl=ssl),
                )

            self._session = async_sessions.acquire(self._keys[0], api)
            self._transfer = async_sessions.acquire(self._keys[1], transfer)
        return self._session, self._transfer

    async def close(self) -> None:
        if self._session is not None:
            self._session = self._transfer = None
            for key in self._keys:
                await async_sessions.release(key)

    async def __aenter__(self) -> CuOptAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------ tokens
    async def bearer_token(self) -> str:
        settings = await self.settings()
        if settings.api_key:
            return settings.api_key
        async with self._token_lock:
            now = time.time()
            if token := self._tokens.current(now):
                return token
            session, _ = await self._sessions()
            basic = base64.b64encode(f"{settings.client_id}:{settings.client_secret}".encode()).decode()

            async def basic_auth() -> dict[str, str]:
                return {"Authorization": f"Basic {basic}"}

            answer = await request_json(
                session,
                "POST",
                settings.token_url,
                service=SERVICE,
                target=redact_url(settings.token_url),
                what="token request",
                policy=self.retry_policy,
                logger=log,
                headers=basic_auth,
                form=proto.token_request_form(),
            )
            token = proto.Token.from_token_response(answer.payload, now)
            mask_secrets(token.value)
            self._tokens.store(token, now)
            log.info("Obtained an NVCF access token valid for %.0fs", token.expires_at - now)
            return token.value

    async def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.bearer_token()}"}

    async def _renew(self) -> bool:
        if (await self.settings()).uses_client_credentials:
            log.warning("NVCF rejected the access token; fetching a new one")
            self._tokens.invalidate()
            return True
        return False

    # ------------------------------------------------------------------------------------ calls
    async def _api(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """One authenticated NVCF call (fresh token, 401 → renew once, shared retry policy)."""
        settings = await self.settings()
        session, _ = await self._sessions()
        return await request_json(
            session,
            method,
            settings.url(path),
            service=SERVICE,
            target=f"/{path}",
            what=what,
            policy=self.retry_policy,
            logger=log,
            headers=self._auth_headers,
            on_unauthorized=self._renew,
            **kwargs,
        )

    async def poll(self, req_id: str, poll_seconds: int = proto.DEFAULT_POLL_SECONDS) -> proto.Invocation:
        try:
            answer = await self._api(
                "GET",
                proto.status_path(req_id),
                what="poll request status",
                accept=proto.is_error_envelope,
                static_headers=proto.poll_headers(poll_seconds),
                timeout=aiohttp.ClientTimeout(sock_connect=self.timeout[0], sock_read=poll_seconds + 30),
            )
        except ServiceHTTPError as exc:
            if exc.status_code == 404:
                raise RequestGoneError(proto.gone_message(req_id)) from exc
            raise
        return proto.interpret(answer.status, answer.payload, req_id_header=answer.headers.get("NVCF-REQID"))

    async def delete_asset(self, asset_id: str) -> bool:
        try:
            await self._api("DELETE", proto.asset_path(asset_id), what="delete asset")
        except ServiceHTTPError as exc:
            if exc.status_code != 404:
                raise
        return True

    async def store_result(self, invocation: proto.Invocation, output_uri: str) -> StoredResult:
        """Persist a fulfilled result; file and object-store writes run in a worker thread."""
        if invocation.response_reference is None:
            return await asyncio.to_thread(
                store_inline_result, invocation.response, output_uri, invocation.req_id
            )
        async with self._downloaded(invocation.response_reference) as zip_path:
            return await asyncio.to_thread(store_zip_result, zip_path, output_uri, invocation.req_id)

    @contextlib.asynccontextmanager
    async def _downloaded(self, url: str) -> AsyncIterator[Path]:
        _, transfer = await self._sessions()
        with tempfile.TemporaryDirectory(prefix="cuopt-result-") as tmp:
            path = Path(tmp) / "result.zip"
            try:
                await self._download_to(transfer, url, path)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ServiceUnavailableError(
                    f"NVCF large result download failed: {type(exc).__name__}: {redact_text(str(exc), 500)}"
                ) from exc
            yield path

    async def _download_to(self, transfer: aiohttp.ClientSession, url: str, path: Path) -> None:
        async for attempt in _retrying(self.retry_policy, "download large result"):
            with attempt:
                async with transfer.get(url) as response:
                    if response.status >= 400:
                        raise ServiceHTTPError(SERVICE, "GET", redact_url(url), response.status)
                    out = await asyncio.to_thread(open, path, "wb")
                    try:
                        async for chunk in response.content.iter_chunked(uris.CHUNK_SIZE):
                            await asyncio.to_thread(out.write, chunk)
                    finally:
                        await asyncio.to_thread(out.close)


def _retrying(policy: RetryPolicy, what: str) -> Any:
    from airflow_provider.utils.retry import async_retrying

    return async_retrying(policy, idempotent=True, logger=log, what=f"{SERVICE} {what}")
