"""What the asynchronous hooks (the triggerer's side) share: connection loading, one shared
``aiohttp`` session per loop and settings, the request loop, and the hook's life cycle.

The twin of :mod:`airflow_provider.hooks.base`: a subclass says how a connection becomes settings
(:meth:`AsyncServiceHook.settings_from`), which headers and pool its session has, and — when its
credentials change per call — :meth:`auth_headers` / :meth:`renew_credentials`. Connections are
loaded with ``get_async_connection`` (no blocking call on the event loop), once per loop and minute
for all hooks (``utils/async_sessions.py``), and one session serves every hook on the loop that has
the same settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import aiohttp

from airflow_provider.utils import async_sessions
from airflow_provider.utils.async_http import AsyncApi, ssl_option
from airflow_provider.utils.http import DEFAULT_TIMEOUTS, USER_AGENT, Answer, Timeouts
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy


class AsyncServiceHook:
    """Base of the provider's async hooks. Use as ``async with Hook(conn_id) as hook: ...``.

    :param conn_id: the Airflow connection.
    :param retry_policy: bounds of the retry loop for transient errors (429, 5xx, network).
    :param timeout: :class:`~airflow_provider.utils.http.Timeouts`, or ``(connect, read)`` seconds.
    """

    #: The service's name in messages.
    service: ClassVar[str] = "service"
    #: Requests in flight per loop and session (None: no limit, e.g. for long polls).
    max_in_flight: ClassVar[int | None] = None

    def __init__(
        self,
        conn_id: str,
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: Timeouts | tuple[float, ...] = DEFAULT_TIMEOUTS,
    ) -> None:
        self.conn_id = conn_id
        self.retry_policy = retry_policy
        self.timeouts = Timeouts.of(timeout)
        self.log = logging.getLogger(type(self).__module__)
        self.api = AsyncApi(
            self.service,
            retry_policy,
            self.timeouts,
            self.log,
            auth=self.auth_headers,
            on_unauthorized=self.renew_credentials,
        )
        self._settings: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._key: Hashable | None = None

    # ------------------------------------------------------------------------------ for subclasses
    def settings_from(self, host: str | None, password: str | None, extras: Mapping[str, Any]) -> Any:
        """The service's settings from a connection's fields (pure; registers secrets with the masker)."""
        raise NotImplementedError

    def session_headers(self, settings: Any) -> Mapping[str, str]:
        """Static headers of the shared session (credentials only when they never change)."""
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    async def auth_headers(self) -> Mapping[str, str]:
        """Headers computed before every attempt (fresh tokens); none by default."""
        return {}

    async def renew_credentials(self) -> bool:
        """After a 401: renew what :meth:`auth_headers` sends and say whether a retry is worth it."""
        return False

    # ------------------------------------------------------------------------------ connection
    async def settings(self) -> Any:
        """The connection, resolved once per loop and minute for all hooks (``async_sessions``)."""
        if self._settings is None:
            self._settings = await async_sessions.cached_settings((type(self), self.conn_id), self._load)
        return self._settings

    async def _load(self) -> Any:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.conn_id)
        extras = await get_async_extra_dejson(conn)
        return self.settings_from(conn.host, conn.password, extras)

    async def session(self) -> aiohttp.ClientSession:
        """The loop-wide shared session for these settings (see ``utils/async_sessions.py``)."""
        if self._session is None:
            settings = await self.settings()
            ssl = await asyncio.to_thread(ssl_option, settings.tls.verify, settings.tls.ca_bundle)
            headers = dict(self.session_headers(settings))
            self._key = (type(self), settings, self.timeouts)
            limit = self.max_in_flight or 0

            def factory() -> aiohttp.ClientSession:
                return aiohttp.ClientSession(
                    headers=headers,
                    connector=aiohttp.TCPConnector(
                        ssl=ssl, limit=limit, limit_per_host=limit, keepalive_timeout=60
                    ),
                )

            self._session = async_sessions.acquire(self._key, factory)
        return self._session

    async def close(self) -> None:
        """Give the shared session back (the last user closes it)."""
        if self._session is not None:
            self._session = None
            await async_sessions.release(self._key)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------ calls
    async def call_api(self, method: str, path: str, *, what: str, **kwargs: Any) -> Answer:
        """One call to an API ``path`` under the connection's base URL (keyword arguments as
        :meth:`AsyncApi.call`); at most :attr:`max_in_flight` at once per shared session."""
        settings = await self.settings()
        session = await self.session()
        url = settings.url(path)
        if self.max_in_flight is None:
            return await self.api.call(session, method, url, target=f"/{path}", what=what, **kwargs)
        async with async_sessions.limiter(self._key, self.max_in_flight):
            return await self.api.call(session, method, url, target=f"/{path}", what=what, **kwargs)
