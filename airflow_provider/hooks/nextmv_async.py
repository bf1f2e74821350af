"""Asynchronous Nextmv Cloud hook (aiohttp) for the triggerer.

A separate class rather than ``a_``-prefixed twins on the sync hook: it shares the protocol module,
the retry policy, the body caps, the error mapping and the total time bound per call with
:class:`~airflow_provider.hooks.nextmv.NextmvHook` (``utils/async_http.AsyncApi`` is the twin of
``utils/sync_http.SyncApi``), and only does the idempotent calls a trigger needs (status, cancel).
Connection loading and the shared session come from
:class:`~airflow_provider.hooks.base_async.AsyncServiceHook`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider.hooks.base_async import AsyncServiceHook
from airflow_provider.protocol import nextmv as proto
from airflow_provider.utils.http import DEFAULT_TIMEOUTS, Timeouts
from airflow_provider.utils.redact import mask_secrets
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy


class NextmvAsyncHook(AsyncServiceHook):
    """Use as ``async with NextmvAsyncHook(conn_id) as hook: await hook.get_run_metadata(...)``."""

    service = "Nextmv Cloud"
    #: Status calls in flight per loop and settings (= the connection pool size): a burst of waits
    #: queues on a semaphore instead of building a thousand requests in one loop iteration.
    max_in_flight = 32

    def __init__(
        self,
        nextmv_conn_id: str = "nextmv_default",
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: Timeouts | tuple[float, ...] = DEFAULT_TIMEOUTS,
    ) -> None:
        super().__init__(nextmv_conn_id, retry_policy=retry_policy, timeout=timeout)
        self.nextmv_conn_id = nextmv_conn_id

    def settings_from(self, host: str | None, password: str | None, extras: Mapping[str, Any]) -> Any:
        """:class:`~airflow_provider.protocol.nextmv.NextmvSettings`; the API key goes to the masker."""
        settings = proto.NextmvSettings.from_connection(host, password, extras)
        mask_secrets(settings.api_key)
        return settings

    def session_headers(self, settings: proto.NextmvSettings) -> Mapping[str, str]:
        """The API key never changes for a connection: it rides on the session."""
        return settings.headers

    async def get_run_metadata(
        self, app_id: str, run_id: str, *, deadline: float | None = None
    ) -> dict[str, Any]:
        """GET ``/runs/{id}/metadata`` (the same call as the sync hook's)."""
        path = proto.run_metadata_path(app_id, run_id)
        answer = await self.call_api("GET", path, what="get run status", deadline=deadline)
        return answer.payload

    async def cancel_run(self, app_id: str, run_id: str) -> None:
        """PATCH ``/runs/{id}/cancel``."""
        await self.call_api("PATCH", proto.run_cancel_path(app_id, run_id), what="cancel run")
