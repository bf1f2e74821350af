"""Wait for a Nextmv run and hand its output file(s) to downstream tasks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider.assets import record_output_assets
from airflow_provider.events.nextmv import NextmvRunEvent, event_from_metadata
from airflow_provider.events.summary import KeptSummary
from airflow_provider.lineage import SolveLineageMixin
from airflow_provider.protocol import rules
from airflow_provider.protocol.outcomes import (
    DEFAULT_REMOTE_LOG_MAX_BYTES,
    check_on_infeasible,
    check_remote_log_max_bytes,
)
from airflow_provider.utils.polling import DEFAULT_MAX_POLL_INTERVAL, DEFAULT_POLL_INTERVAL

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider.hooks.nextmv import NextmvHook


class NextmvRunSensor(SolveLineageMixin, BaseSensorOperator):
    """Wait for a Nextmv run to finish, then stream its output to ``output_uri``.

    Its ``return_value`` XCom is the list of written paths (``[]`` without ``output_uri``), so a
    downstream ``@task`` receives exactly where the solution landed; ``solution_summary`` says how
    the run ended. A failed or canceled run fails the task with the service's error text (a run
    that failed on its input, and an app-reported infeasible result, without retries); the run log
    is copied into the task log. Works in ``poke``, ``reschedule`` and
    deferrable mode; all three end in the same completion code.

    :param app_id: Nextmv application id.
    :param run_id: run to wait for (templated; e.g. ``NextmvRunOperator(...).output``).
    :param output_uri: file URI, or folder ending in ``/`` (templated). Output is streamed, with
        no API key sent to the presigned download host; multi-file outputs are unpacked.
    :param cancel_on_timeout: cancel the run when the sensor times out (default False: the
        sensor did not start the run).
    :param poke_interval: first delay between polls; in deferrable mode it grows ×1.5 up to
        ``max_poll_interval``.
    :param on_infeasible: ``"fail"`` (default, not retried) or ``"succeed"``: a run whose app
        reports infeasible/unbounded then ends the task successfully.
    :param remote_log_max_bytes: bound of the run log copied into the task log (default 64 KiB).
    :param nextmv_conn_id: Airflow connection (type ``nextmv``).
    """

    template_fields: Sequence[str] = ("app_id", "run_id", "output_uri", "nextmv_conn_id")
    lineage_service = "nextmv"

    def __init__(
        self,
        *,
        app_id: str,
        run_id: str,
        output_uri: str | None = None,
        cancel_on_timeout: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float | timedelta = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_infeasible: str = "fail",
        remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
        nextmv_conn_id: str = "nextmv_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        rules.poll_settings(float(self.poke_interval), max(max_poll_interval, float(self.poke_interval)))
        self.app_id = app_id
        self.run_id = run_id
        self.output_uri = output_uri
        self.cancel_on_timeout = cancel_on_timeout
        self.deferrable = deferrable
        self.max_poll_interval = max(max_poll_interval, float(self.poke_interval))
        self.on_infeasible = check_on_infeasible(on_infeasible)
        self.remote_log_max_bytes = check_remote_log_max_bytes(remote_log_max_bytes)
        self.nextmv_conn_id = nextmv_conn_id

    @cached_property
    def hook(self) -> NextmvHook:
        from airflow_provider.hooks.nextmv import NextmvHook  # lazy: keeps DAG parsing fast

        return NextmvHook(self.nextmv_conn_id)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                if self.cancel_on_timeout:
                    self.hook.cancel_best_effort(self.app_id, self.run_id)
                raise
        deadline = time.time() + float(self.timeout)
        event = event_from_metadata(
            self.app_id, self.run_id, self.hook.get_run_metadata(self.app_id, self.run_id)
        )
        if event is not None:
            return self._complete(context, event)
        from airflow_provider.triggers.nextmv import NextmvRunTrigger

        self.defer(
            trigger=NextmvRunTrigger(
                app_id=self.app_id,
                run_id=self.run_id,
                end_time=deadline,
                nextmv_conn_id=self.nextmv_conn_id,
                poll_interval=float(self.poke_interval),
                max_poll_interval=self.max_poll_interval,
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        metadata = self.hook.get_run_metadata(self.app_id, self.run_id)
        event = event_from_metadata(self.app_id, self.run_id, metadata)
        if event is None:
            self.log.info("Nextmv run %s is not finished yet", self.run_id)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._complete(context, event))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str]:
        return self._complete(context, NextmvRunEvent.from_payload(event))

    def _complete(self, context: Context, event: NextmvRunEvent) -> list[str]:
        """The sensor's one completion (poke, reschedule, deferrable): the hook's, with this task's
        policy; the written output becomes an asset event of the task's matching outlets."""
        summary = KeptSummary(context)
        paths = self.hook.finish(
            event,
            output_uri=self.output_uri,
            cancel_on_timeout=self.cancel_on_timeout,
            on_infeasible=self.on_infeasible,
            remote_log_max_bytes=self.remote_log_max_bytes,
            publish=summary,
        )
        record_output_assets(context, self, paths, summary.asset_extra())
        return paths
