"""Asynchronous NVIDIA cuOpt (NVCF) hook (aiohttp) for the triggerer.

Does what a trigger needs on the event loop: keep a token fresh, long-poll a request's status,
delete the input asset. The same protocol functions, token rules, byte caps and total time bound
per call as :class:`~airflow_provider.hooks.cuopt.CuOptHook`; storing a result is *not* done here
but by the one shared implementation, ``hooks/cuopt_results.store_result``, which the trigger runs in
a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider.exceptions import RequestGoneError, ServiceHTTPError
from airflow_provider.hooks.base_async import AsyncServiceHook
from airflow_provider.protocol import cuopt as proto
from airflow_provider.protocol import nvcf_tokens
from airflow_provider.utils.async_http import AsyncApi
from airflow_provider.utils.http import DEFAULT_TIMEOUTS, Timeouts
from airflow_provider.utils.redact import mask_secrets, redact_url
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy

SERVICE = "NVCF"


class CuOptAsyncHook(AsyncServiceHook):
    """Use as ``async with CuOptAsyncHook(conn_id) as hook: await hook.poll(req_id)``.

    Long polls hold a connection for up to their window, so the session's pool is not capped.
    """

    service = SERVICE

    def __init__(
        self,
        cuopt_conn_id: str = "cuopt_default",
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: Timeouts | tuple[float, ...] = DEFAULT_TIMEOUTS,
    ) -> None:
        super().__init__(cuopt_conn_id, retry_policy=retry_policy, timeout=timeout)
        self.cuopt_conn_id = cuopt_conn_id
        self._token_api = AsyncApi(SERVICE, retry_policy, self.timeouts, self.log)
        self._tokens = nvcf_tokens.TokenCache()
        self._token_lock = asyncio.Lock()

    def settings_from(self, host: str | None, password: str | None, extras: Mapping[str, Any]) -> Any:
        """:class:`~airflow_provider.protocol.cuopt.CuOptSettings`; key and secret go to the masker."""
        settings = proto.CuOptSettings.from_connection(host, password, extras)
        mask_secrets(settings.api_key, settings.client_secret)
        return settings

    # ------------------------------------------------------------------------------------ tokens
    async def bearer_token(self) -> str:
        """The API key, or a cached JWT refreshed before it expires (one fetch for concurrent callers)."""
        settings = await self.settings()
        if settings.api_key:
            return settings.api_key
        async with self._token_lock:
            now = time.time()
            if token := self._tokens.current(now):
                return token
            assert settings.client_id and settings.client_secret
            answer = await self._token_api.call(
                await self.session(),
                "POST",
                settings.token_url,
                target=redact_url(settings.token_url),
                what="token request",
                data=nvcf_tokens.token_request_form(),
                headers=nvcf_tokens.token_request_headers(settings.client_id, settings.client_secret),
            )
            token = nvcf_tokens.Token.from_token_response(answer.payload, now)
            self._tokens.store(token, now)
            self.log.info("Obtained an NVCF access token valid for %.0fs", token.expires_at - now)
            return token.value

    async def auth_headers(self) -> Mapping[str, str]:
        """The bearer header, with a fresh token when the connection uses client credentials."""
        return {"Authorization": f"Bearer {await self.bearer_token()}"}

    async def renew_credentials(self) -> bool:
        """After a 401: drop the cached JWT (client credentials); an API key cannot be renewed."""
        if (await self.settings()).uses_client_credentials:
            self.log.warning("NVCF rejected the access token; fetching a new one")
            self._tokens.invalidate()
            return True
        return False

    # ------------------------------------------------------------------------------------ calls
    async def poll(
        self, req_id: str, poll_seconds: int = proto.DEFAULT_POLL_SECONDS, *, deadline: float | None = None
    ) -> proto.Invocation:
        """Long-poll a request's status (the sync hook's ``poll``); a 404 is :class:`RequestGoneError`."""
        try:
            answer = await self.call_api(
                "GET",
                proto.status_path(req_id),
                what="poll request status",
                accept=proto.is_error_envelope,
                headers=proto.poll_headers(poll_seconds),
                read_timeout=self.timeouts.long_poll_read(poll_seconds),
                deadline=deadline,
            )
        except ServiceHTTPError as exc:
            if exc.status_code == 404:
                raise RequestGoneError(proto.gone_message(req_id)) from exc
            raise
        return proto.interpret(answer.status, answer.payload, req_id_header=answer.headers.get("NVCF-REQID"))

    async def delete_asset(self, asset_id: str) -> bool:
        """Delete an asset; an asset that is already gone counts as deleted."""
        try:
            await self.call_api("DELETE", proto.asset_path(asset_id), what="delete asset")
        except ServiceHTTPError as exc:
            if exc.status_code != 404:
                raise
        return True
