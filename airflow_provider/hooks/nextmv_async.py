"""Asynchronous Nextmv Cloud hook (aiohttp) for the triggerer.

A separate class rather than ``a_``-prefixed twins on the sync hook: it shares the protocol module,
the retry policy and the error types with :class:`~airflow_provider.hooks.nextmv.NextmvHook`, and
only does the idempotent calls a trigger needs (status, cancel). The connection is loaded with
``get_async_connection`` (no blocking call on the event loop) and one ``aiohttp.ClientSession`` is
reused for the whole life of the hook.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from airflow_provider.protocol import nextmv as proto
from airflow_provider.utils import async_sessions
from airflow_provider.utils.async_http import request_json, ssl_option
from airflow_provider.utils.http import DEFAULT_TIMEOUT
from airflow_provider.utils.redact import mask_secrets
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger(__name__)
#: Status calls in flight per loop and settings (= the connection pool size): a burst of waits
#: queues on a semaphore instead of building a thousand requests in one loop iteration.
MAX_IN_FLIGHT = 32


class NextmvAsyncHook:
    """Use as ``async with NextmvAsyncHook(conn_id) as hook: await hook.get_run_metadata(...)``."""

    def __init__(
        self,
        nextmv_conn_id: str = "nextmv_default",
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.nextmv_conn_id = nextmv_conn_id
        self.retry_policy = retry_policy
        self.timeout = timeout
        self._settings: proto.NextmvSettings | None = None
        self._session: aiohttp.ClientSession | None = None
        self._key: tuple | None = None

    async def settings(self) -> proto.NextmvSettings:
        if self._settings is None:
            self._settings = await async_sessions.cached_settings(
                ("nextmv", self.nextmv_conn_id), self._load_settings
            )
        return self._settings

    async def _load_settings(self) -> proto.NextmvSettings:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.nextmv_conn_id)
        extras = await get_async_extra_dejson(conn)
        settings = proto.NextmvSettings.from_connection(conn.host, conn.password, extras)
        mask_secrets(settings.api_key)
        return settings

    async def session(self) -> aiohttp.ClientSession:
        """The loop-wide shared session for these settings (see ``utils/async_sessions.py``)."""
        if self._session is None:
            settings = await self.settings()
            ssl = await asyncio.to_thread(ssl_option, settings.tls.verify, settings.tls.ca_bundle)
            self._key = ("nextmv", settings, self.timeout)

            def factory() -> aiohttp.ClientSession:
                return aiohttp.ClientSession(
                    headers=settings.headers,
                    timeout=aiohttp.ClientTimeout(sock_connect=self.timeout[0], sock_read=self.timeout[1]),
                    # status polls are short: a small pool of kept-alive connections serves many waits
                    connector=aiohttp.TCPConnector(
                        ssl=ssl, limit_per_host=MAX_IN_FLIGHT, keepalive_timeout=60
                    ),
                )

            self._session = async_sessions.acquire(self._key, factory)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            self._session = None
            await async_sessions.release(self._key)

    async def __aenter__(self) -> NextmvAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, method: str, path: str, *, what: str) -> Any:
        settings = await self.settings()
        session = await self.session()
        async with async_sessions.limiter(self._key, MAX_IN_FLIGHT):
            answer = await request_json(
                session,
                method,
                settings.url(path),
                service="Nextmv Cloud",
                target=f"/{path}",
                what=what,
                policy=self.retry_policy,
                logger=log,
            )
        return answer.payload

    async def get_run_metadata(self, app_id: str, run_id: str) -> dict[str, Any]:
        return await self._call("GET", proto.run_metadata_path(app_id, run_id), what="get run status")

    async def cancel_run(self, app_id: str, run_id: str) -> None:
        await self._call("PATCH", proto.run_cancel_path(app_id, run_id), what="cancel run")
