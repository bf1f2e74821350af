"""Deferrable wait for a Nextmv run, polled from the triggerer.

The run itself was submitted by the worker; this trigger only issues idempotent GETs (and a cancel
when a user kills the task, Airflow 3.3+). Serialisation, the absolute deadline, the one event and
the error event come from :class:`~airflow_provider.triggers.base.ProviderTrigger`.
"""

from __future__ import annotations

import asyncio
import random

from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus, event_from_metadata, timeout_event
from airflow_provider.hooks.nextmv_async import NextmvAsyncHook
from airflow_provider.protocol.nextmv import run_status
from airflow_provider.triggers.base import ProviderTrigger
from airflow_provider.utils.polling import DEFAULT_MAX_POLL_INTERVAL, DEFAULT_POLL_INTERVAL, poll_delay


class NextmvRunTrigger(ProviderTrigger):
    """Poll a Nextmv run's metadata until it ends or ``end_time`` (epoch seconds) passes.

    :param app_id: Nextmv application id.
    :param run_id: the run to wait for.
    :param end_time: absolute wall-clock deadline, ``time.time()`` based.
    :param nextmv_conn_id: Airflow connection id.
    :param poll_interval: first delay between polls, seconds (grows ×1.5 with jitter).
    :param max_poll_interval: cap of the delay, seconds.
    """

    serialized_fields = (
        "app_id",
        "run_id",
        "end_time",
        "nextmv_conn_id",
        "poll_interval",
        "max_poll_interval",
    )

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

    def _hook(self) -> NextmvAsyncHook:
        return NextmvAsyncHook(self.nextmv_conn_id)

    def describe(self) -> str:
        return f"Nextmv run {self.run_id}"

    async def wait(self) -> NextmvRunEvent:
        """The same schedule and the same events as ``NextmvHook.wait_for_run``."""
        # The task checked the run just before deferring, and many triggers often start together
        # (a triggerer restart, a mapped task): spread the first polls over one interval.
        await asyncio.sleep(random.uniform(0, max(0.0, min(self.poll_interval, self.remaining()))))
        attempt = 0
        last_status = None
        async with self._hook() as hook:
            while True:
                if self.remaining() <= 0:
                    return self.timeout_event()
                metadata = await hook.get_run_metadata(self.app_id, self.run_id, deadline=self.end_time)
                if event := event_from_metadata(self.app_id, self.run_id, metadata):
                    return event
                status = run_status(metadata)
                if status != last_status:  # state changes at INFO, every poll at DEBUG
                    self.log.info("Nextmv run %s is %s", self.run_id, status.value)
                    last_status = status
                if self.remaining() <= 0:
                    return self.timeout_event()
                delay = min(poll_delay(attempt, self.poll_interval, self.max_poll_interval), self.remaining())
                self.log.debug("Nextmv run %s: next poll in %.1fs", self.run_id, delay)
                await asyncio.sleep(delay)
                attempt += 1

    def timeout_event(self) -> NextmvRunEvent:
        return timeout_event(self.app_id, self.run_id, "the task's timeout")

    def error_event(self, message: str) -> NextmvRunEvent:
        return NextmvRunEvent(RunEventStatus.ERROR, self.app_id, self.run_id, message)

    async def cancel_remote(self) -> None:
        """Cancel the remote run when a user kills the task (Airflow 3.3+)."""
        async with self._hook() as hook:
            await hook.cancel_run(self.app_id, self.run_id)
        self.log.info("Canceled Nextmv run %s after the task was killed", self.run_id)
