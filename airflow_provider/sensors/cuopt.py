"""Wait for an NVCF cuOpt request and hand the stored result file to downstream tasks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider.assets import record_output_assets
from airflow_provider.events.cuopt import CuOptSolveEvent
from airflow_provider.events.summary import KeptSummary
from airflow_provider.exceptions import RequestGoneError
from airflow_provider.lineage import SolveLineageMixin
from airflow_provider.protocol import rules
from airflow_provider.protocol.cuopt import OUTPUT_URI_WHY, check_poll_seconds
from airflow_provider.protocol.outcomes import (
    DEFAULT_REMOTE_LOG_MAX_BYTES,
    check_on_infeasible,
    check_remote_log_max_bytes,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider.hooks.cuopt import CuOptHook
    from airflow_provider.hooks.cuopt_server import CuOptServerHook


def _optional(value: str | None) -> str | None:
    """Templated ids may render as "None" or "" when the upstream task pushed nothing."""
    return None if value in (None, "", "None", "null") else str(value)


class CuOptSolveSensor(SolveLineageMixin, BaseSensorOperator):
    """Wait for an NVCF request (``req_id``), store its result at ``output_uri``, return the path(s).

    Large results (a zip behind ``responseReference``) are downloaded without credentials, and
    ``large_result`` is extracted with path and size guards and checked to be JSON. If NVCF says
    the result was already handed out (404) and it is already stored at ``output_uri`` — the
    submitting operator received it at once — the sensor returns that path. The input asset, if
    given, is deleted once the request has ended. Infeasible, errored and rejected requests fail
    the task with what NVCF/cuOpt said, naming the request and asset ids (infeasible, unbounded and
    invalid problems without retries). The XCom ``solution_summary`` says how the solve ended.

    :param req_id: NVCF request id (templated, e.g. ``CuOptSolveOperator(...).output``).
    :param output_uri: file URI, or folder ending in ``/`` (templated). Required.
    :param asset_id: input asset to delete afterwards (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='solve', key='asset_id') }}"``.
    :param poll_seconds: NVCF long-poll window of each status call (poke mode: per poke).
    :param on_infeasible: ``"fail"`` (default, not retried) or ``"succeed"`` (the task succeeds and
        the ``solution_summary`` XCom says infeasible/unbounded).
    :param remote_log_max_bytes: bound of cuOpt's notes and warnings copied into the task log.
    :param cuopt_conn_id: Airflow connection: type ``cuopt`` (NVCF) or ``cuopt_server`` (a
        self-hosted server, polled with ``GET /cuopt/solution/{id}``; ``poll_seconds`` is then the
        longest pause between polls).
    :param solver_logs: self-hosted server: copy the end of the job's solver log into the task log
        (the job must have been submitted with ``solver_logs=True``).
    :param keep_on_server: self-hosted server: keep the solution (and log) on the server.
    """

    template_fields: Sequence[str] = ("req_id", "output_uri", "asset_id", "cuopt_conn_id")
    lineage_service = "cuopt"
    lineage_id_attr = "req_id"

    def __init__(
        self,
        *,
        req_id: str,
        output_uri: str,
        asset_id: str | None = None,
        poll_seconds: int = 10,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        on_infeasible: str = "fail",
        remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
        cuopt_conn_id: str = "cuopt_default",
        solver_logs: bool = False,
        keep_on_server: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        rules.required("output_uri", output_uri, OUTPUT_URI_WHY)
        self.req_id = req_id
        self.output_uri = output_uri
        self.asset_id = asset_id
        self.poll_seconds = check_poll_seconds(poll_seconds)
        self.deferrable = deferrable
        self.on_infeasible = check_on_infeasible(on_infeasible)
        self.remote_log_max_bytes = check_remote_log_max_bytes(remote_log_max_bytes)
        self.cuopt_conn_id = cuopt_conn_id
        self.solver_logs = solver_logs
        self.keep_on_server = keep_on_server

    @cached_property
    def hook(self) -> CuOptHook | CuOptServerHook:
        from airflow_provider.hooks.cuopt_backends import cuopt_hook_for  # lazy: keeps DAG parsing fast
        from airflow_provider.protocol.cuopt_server import SubmitOptions

        options = SubmitOptions.of(solver_logs=self.solver_logs)
        return cuopt_hook_for(self.cuopt_conn_id, options=options, keep_on_server=self.keep_on_server)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider.triggers.cuopt import CuOptSolveTrigger

        self.defer(
            trigger=CuOptSolveTrigger(
                req_id=self.req_id,
                output_uri=self.output_uri,
                end_time=time.time() + float(self.timeout),
                asset_id=_optional(self.asset_id),
                poll_seconds=self.poll_seconds,
                cuopt_conn_id=self.cuopt_conn_id,
                conn_type=self.hook.conn_type,
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        asset_id = _optional(self.asset_id)
        try:
            invocation = self.hook.poll(self.req_id, self.poll_seconds)
        except RequestGoneError:
            event = self.hook.gone_outcome(self.req_id, asset_id, self.output_uri)
            if event.output_paths:
                self.log.info(
                    "%s request %s was already received and stored at %s",
                    self.hook.service,
                    self.req_id,
                    event.output_paths,
                )
            return PokeReturnValue(is_done=True, xcom_value=self._finish(context, event))
        if invocation.pending:
            self.log.info("%s request %s is %s", self.hook.service, self.req_id, invocation.status.value)
            return False
        event = self.hook.outcome_event(invocation, asset_id, self.output_uri)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, event))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str]:
        return self._finish(context, CuOptSolveEvent.from_payload(event))

    def _finish(self, context: Context, event: CuOptSolveEvent) -> list[str]:
        """The sensor's one completion (poke and deferrable): the hook's, with this task's policy;
        the stored result becomes an asset event of the task's matching outlets."""
        summary = KeptSummary(context)
        paths = self.hook.finish(
            event,
            on_infeasible=self.on_infeasible,
            remote_log_max_bytes=self.remote_log_max_bytes,
            publish=summary,
        )
        record_output_assets(context, self, paths, summary.asset_extra())
        return paths
