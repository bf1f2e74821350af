"""Deferrable wait for a cuOpt request on NVCF, long-polled from the triggerer.

NVCF hands a finished result out exactly once, so the poll that receives it persists it to
``output_uri`` *before* emitting the event, with the same code the worker runs
(``hooks/cuopt_results.store_result``, in a worker thread: no blocking I/O on the event loop, and a
damaged large-result zip is downloaded again here too). The event carries only paths. The input
asset is deleted once the request has ended. Serialisation, the absolute deadline, the one event and
the error event come from :class:`~airflow_provider.triggers.base.ProviderTrigger`.

The same trigger waits for a self-hosted cuOpt server's job when ``conn_type`` is ``cuopt_server``:
then ``CuOptServerAsyncHook.wait_for_result`` polls ``GET /cuopt/solution/{id}`` and the killed
task's job is aborted (``DELETE /cuopt/request/{id}``).
"""

from __future__ import annotations

import asyncio
import time

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus, event_for, timeout_event
from airflow_provider.exceptions import RequestGoneError
from airflow_provider.hooks.cuopt_async import CuOptAsyncHook
from airflow_provider.hooks.cuopt_results import gone_outcome, store_result
from airflow_provider.hooks.cuopt_server import timeout_event as server_timeout_event
from airflow_provider.hooks.cuopt_server_async import CuOptServerAsyncHook
from airflow_provider.protocol.cuopt import DEFAULT_POLL_SECONDS, InvocationStatus, poll_window
from airflow_provider.protocol.cuopt_server import CONN_TYPE as SERVER_CONN_TYPE
from airflow_provider.triggers.base import ProviderTrigger
from airflow_provider.utils.polling import early_answer_pause


class CuOptSolveTrigger(ProviderTrigger):
    """Long-poll ``/v2/nvcf/exec/status/{req_id}`` until the request ends or ``end_time`` passes.

    :param req_id: NVCF request id.
    :param output_uri: where the result is stored (file, or folder ending in ``/``).
    :param end_time: absolute wall-clock deadline (epoch seconds).
    :param asset_id: input asset to delete once the request has ended (or None).
    :param poll_seconds: NVCF long-poll window per status call.
    :param cuopt_conn_id: Airflow connection id.
    :param conn_type: the connection's type: ``cuopt`` (NVCF) or ``cuopt_server`` (self-hosted).
    """

    serialized_fields = (
        "req_id",
        "output_uri",
        "end_time",
        "asset_id",
        "poll_seconds",
        "cuopt_conn_id",
        "conn_type",
    )

    def __init__(
        self,
        *,
        req_id: str,
        output_uri: str,
        end_time: float,
        asset_id: str | None = None,
        poll_seconds: int = DEFAULT_POLL_SECONDS,
        cuopt_conn_id: str = "cuopt_default",
        conn_type: str = "cuopt",
    ) -> None:
        super().__init__()
        self.req_id = str(req_id)
        self.output_uri = str(output_uri)
        self.end_time = float(end_time)
        self.asset_id = str(asset_id) if asset_id else None
        self.poll_seconds = int(poll_seconds)
        self.cuopt_conn_id = str(cuopt_conn_id)
        self.conn_type = str(conn_type)

    @property
    def on_server(self) -> bool:
        return self.conn_type == SERVER_CONN_TYPE

    def _server_hook(self) -> CuOptServerAsyncHook:
        return CuOptServerAsyncHook(self.cuopt_conn_id)

    def _hook(self) -> CuOptAsyncHook:
        return CuOptAsyncHook(self.cuopt_conn_id)

    def describe(self) -> str:
        if self.on_server:
            return f"cuOpt server request {self.req_id}"
        return f"NVCF request {self.req_id} (asset {self.asset_id})"

    async def wait(self) -> CuOptSolveEvent:
        """The same decisions, in the same order, as ``CuOptHook.wait_for_result``."""
        if self.on_server:
            async with self._server_hook() as server:
                return await server.wait_for_result(
                    self.req_id,
                    self.output_uri,
                    end_time=self.end_time,
                    poll_seconds=self.poll_seconds,
                    slack=self.deadline_slack,
                )
        early = 0
        async with self._hook() as hook:
            while True:
                if self.remaining() <= 0:
                    return self.timeout_event()
                window = poll_window(self.poll_seconds, self.remaining())
                started = time.monotonic()
                try:
                    invocation = await hook.poll(self.req_id, window, deadline=self.end_time)
                except RequestGoneError:
                    return await asyncio.to_thread(gone_outcome, self.req_id, self.asset_id, self.output_uri)
                if invocation.pending:
                    self.log.debug("NVCF request %s still %s", self.req_id, invocation.status.value)
                    pause = early_answer_pause(time.monotonic() - started, window, early)
                    early = early + 1 if pause else 0
                    await asyncio.sleep(min(pause, max(0.0, self.remaining())))
                    continue
                stored = None
                if invocation.status is InvocationStatus.FULFILLED:
                    settings = await hook.settings()
                    stored = await asyncio.to_thread(
                        store_result,
                        settings.tls,
                        hook.timeouts,
                        hook.retry_policy,
                        self.log,
                        invocation,
                        self.output_uri,
                        self.end_time + self.deadline_slack,
                    )
                return event_for(invocation, self.asset_id, stored)

    def timeout_event(self) -> CuOptSolveEvent:
        if self.on_server:
            return server_timeout_event(self.req_id)
        return timeout_event(self.req_id, self.asset_id)

    def error_event(self, message: str) -> CuOptSolveEvent:
        return CuOptSolveEvent(SolveEventStatus.ERROR, self.req_id, self.asset_id, (), message)

    async def settle(self, outcome: CuOptSolveEvent) -> CuOptSolveEvent:  # type: ignore[override]
        """Delete the input asset on every outcome, timeouts included: the task fails or ends next."""
        if not outcome.asset_id:
            return outcome
        try:
            async with self._hook() as hook:
                await hook.delete_asset(str(outcome.asset_id))
        except Exception as exc:  # the worker retries the deletion in execute_complete
            self.log.warning("Could not delete NVCF asset %s: %s", outcome.asset_id, exc)
            return outcome
        self.log.info("Deleted NVCF asset %s", outcome.asset_id)
        return outcome.with_asset_deleted()

    async def cancel_remote(self) -> None:
        """Abort a self-hosted server's job; NVCF cannot cancel an exec request, so at least drop the
        input asset (Airflow 3.3+ ``on_kill``)."""
        if self.on_server:
            async with self._server_hook() as server:
                await server.cancel(self.req_id)
            self.log.info("Aborted cuOpt server request %s after the task was killed", self.req_id)
            return
        if self.asset_id:
            async with self._hook() as hook:
                await hook.delete_asset(self.asset_id)
            self.log.info("Deleted NVCF asset %s after the task was killed", self.asset_id)
