"""Deferrable wait for a Nextmv run, polled from the triggerer.

Built to survive the triggerer: the kwargs are primitives only, the deadline is an absolute epoch
time (a restarted trigger neither extends nor shortens it), and exactly one event is emitted.
The run itself was submitted by the worker; this trigger only issues idempotent GETs (and a
cancel when a user kills the task, Airflow 3.3+).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus, event_from_metadata, timeout_event
from airflow_provider.hooks.nextmv_async import NextmvAsyncHook
from airflow_provider.protocol.nextmv import run_status
from airflow_provider.utils.polling import DEFAULT_MAX_POLL_INTERVAL, DEFAULT_POLL_INTERVAL, poll_delay
from airflow_provider.utils.redact import redact_text
from airflow_provider.utils.triggerer_gc import freeze_startup_objects_once


class NextmvRunTrigger(BaseTrigger):
    """Poll a Nextmv run's metadata until it ends or ``end_time`` (epoch seconds) passes.

    :param app_id: Nextmv application id.
    :param run_id: the run to wait for.
    :param end_time: absolute wall-clock deadline, ``time.time()`` based.
    :param nextmv_conn_id: Airflow connection id.
    :param poll_interval: first delay between polls, seconds (grows ×1.5 with jitter).
    :param max_poll_interval: cap of the delay, seconds.
    """

    def __init__(
        self,
        *,
        app_id: str,
        run_id: str,
        end_time: float,
        nextmv_conn_id: str = "nextmv_default",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    ) -> None:
        super().__init__()
        self.app_id = str(app_id)
        self.run_id = str(run_id)
        self.end_time = float(end_time)
        self.nextmv_conn_id = str(nextmv_conn_id)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "app_id": self.app_id,
                "run_id": self.run_id,
                "end_time": self.end_time,
                "nextmv_conn_id": self.nextmv_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
            },
        )

    def _hook(self) -> NextmvAsyncHook:
        return NextmvAsyncHook(self.nextmv_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        freeze_startup_objects_once()
        event = await self._wait()
        self.log.info("Nextmv run %s: %s %s", self.run_id, event.status.value, event.message[:500])
        yield TriggerEvent(event.to_payload())

    async def _wait(self) -> NextmvRunEvent:
        attempt = 0
        last_status = None
        try:
            # The task checked the run just before deferring, and many triggers often start together
            # (a triggerer restart, a mapped task): spread the first polls over one interval.
            await asyncio.sleep(
                random.uniform(0, max(0.0, min(self.poll_interval, self.end_time - time.time())))
            )
            async with self._hook() as hook:
                while True:
                    metadata = await hook.get_run_metadata(self.app_id, self.run_id)
                    if event := event_from_metadata(self.app_id, self.run_id, metadata):
                        return event
                    status = run_status(metadata)
                    if status != last_status:  # state changes at INFO, every poll at DEBUG
                        self.log.info("Nextmv run %s is %s", self.run_id, status.value)
                        last_status = status
                    remaining = self.end_time - time.time()
                    if remaining <= 0:
                        return timeout_event(self.app_id, self.run_id, "the task's timeout")
                    delay = min(poll_delay(attempt, self.poll_interval, self.max_poll_interval), remaining)
                    self.log.debug("Nextmv run %s: next poll in %.1fs", self.run_id, delay)
                    await asyncio.sleep(delay)
                    attempt += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one event, always: the operator turns it into a clear task error
            return NextmvRunEvent(
                RunEventStatus.ERROR, self.app_id, self.run_id, redact_text(f"{type(exc).__name__}: {exc}")
            )

    async def on_kill(self) -> None:
        """Airflow 3.3+: a user marked the task failed/success or cleared it — cancel the remote run."""
        try:
            async with self._hook() as hook:
                await hook.cancel_run(self.app_id, self.run_id)
            self.log.info("Canceled Nextmv run %s after the task was killed", self.run_id)
        except Exception as exc:
            self.log.warning("Could not cancel Nextmv run %s: %s", self.run_id, exc)
