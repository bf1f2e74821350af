"""Deferrable wait for an NVCF cuOpt request, long-polled from the triggerer.

NVCF hands a finished result out exactly once, so the poll that receives it persists it to
``output_uri`` (in a worker thread: no blocking I/O on the event loop) *before* emitting the event;
the event then carries only paths. The input asset is deleted once the request has ended.
Kwargs are primitives, the deadline is absolute, exactly one event is emitted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus, event_for, timeout_event
from airflow_provider.exceptions import RequestGoneError
from airflow_provider.hooks._cuopt_results import already_stored
from airflow_provider.hooks.cuopt_async import CuOptAsyncHook
from airflow_provider.protocol.cuopt import DEFAULT_POLL_SECONDS, InvocationStatus
from airflow_provider.utils.redact import redact_text
from airflow_provider.utils.triggerer_gc import freeze_startup_objects_once


class CuOptSolveTrigger(BaseTrigger):
    """Long-poll ``/v2/nvcf/exec/status/{req_id}`` until the request ends or ``end_time`` passes.

    :param req_id: NVCF request id.
    :param output_uri: where the result is stored (file, or folder ending in ``/``).
    :param end_time: absolute wall-clock deadline (epoch seconds).
    :param asset_id: input asset to delete once the request has ended (or None).
    :param poll_seconds: NVCF long-poll window per status call.
    :param cuopt_conn_id: Airflow connection id.
    """

    def __init__(
        self,
        *,
        req_id: str,
        output_uri: str,
        end_time: float,
        asset_id: str | None = None,
        poll_seconds: int = DEFAULT_POLL_SECONDS,
        cuopt_conn_id: str = "cuopt_default",
    ) -> None:
        super().__init__()
        self.req_id = str(req_id)
        self.output_uri = str(output_uri)
        self.end_time = float(end_time)
        self.asset_id = str(asset_id) if asset_id else None
        self.poll_seconds = int(poll_seconds)
        self.cuopt_conn_id = str(cuopt_conn_id)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "req_id": self.req_id,
                "output_uri": self.output_uri,
                "end_time": self.end_time,
                "asset_id": self.asset_id,
                "poll_seconds": self.poll_seconds,
                "cuopt_conn_id": self.cuopt_conn_id,
            },
        )

    def _hook(self) -> CuOptAsyncHook:
        return CuOptAsyncHook(self.cuopt_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        freeze_startup_objects_once()
        async with self._hook() as hook:
            event = await self._wait(hook)
            if event.asset_id:  # every outcome, timeouts included: the task fails or ends here
                event = await self._delete_asset(hook, event)
        self.log.info(
            "NVCF request %s (asset %s): %s %s",
            self.req_id,
            self.asset_id,
            event.status.value,
            event.message[:500],
        )
        yield TriggerEvent(event.to_payload())

    async def _wait(self, hook: CuOptAsyncHook) -> CuOptSolveEvent:
        try:
            while True:
                remaining = self.end_time - time.time()
                if remaining <= 0:
                    return timeout_event(self.req_id, self.asset_id)
                window = max(1, min(self.poll_seconds, int(remaining) or 1))
                try:
                    invocation = await hook.poll(self.req_id, window)
                except RequestGoneError as exc:
                    paths = await asyncio.to_thread(already_stored, self.output_uri, self.req_id)
                    if paths:  # the submitting task received and stored it already
                        return CuOptSolveEvent(
                            SolveEventStatus.SUCCEEDED, self.req_id, self.asset_id, tuple(paths)
                        )
                    return CuOptSolveEvent(SolveEventStatus.FAILED, self.req_id, self.asset_id, (), str(exc))
                if invocation.pending:
                    self.log.debug("NVCF request %s still %s", self.req_id, invocation.status.value)
                    continue
                stored = None
                if invocation.status is InvocationStatus.FULFILLED:
                    stored = await hook.store_result(invocation, self.output_uri)
                    self.log.info(
                        "Stored the result of NVCF request %s at %s", self.req_id, ", ".join(stored.paths)
                    )
                return event_for(invocation, self.asset_id, stored)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one event, always: the task turns it into a clear error
            message = redact_text(f"{type(exc).__name__}: {exc}")
            return CuOptSolveEvent(SolveEventStatus.ERROR, self.req_id, self.asset_id, (), message)

    async def _delete_asset(self, hook: CuOptAsyncHook, event: CuOptSolveEvent) -> CuOptSolveEvent:
        try:
            await hook.delete_asset(str(event.asset_id))
        except Exception as exc:  # the worker retries the deletion in execute_complete
            self.log.warning("Could not delete NVCF asset %s: %s", event.asset_id, exc)
            return event
        self.log.info("Deleted NVCF asset %s", event.asset_id)
        return event.with_asset_deleted()

    async def on_kill(self) -> None:
        """Airflow 3.3+: the task was killed by a user. NVCF cannot cancel exec requests; drop the asset."""
        if not self.asset_id:
            return
        try:
            async with self._hook() as hook:
                await hook.delete_asset(self.asset_id)
            self.log.info("Deleted NVCF asset %s after the task was killed", self.asset_id)
        except Exception as exc:
            self.log.warning("Could not delete NVCF asset %s: %s", self.asset_id, exc)
