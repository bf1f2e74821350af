"""Wait for an NVCF cuOpt request and hand the stored result file to downstream tasks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider.assets import record_output_assets, solve_extra
from airflow_provider.events.cuopt import CuOptSolveEvent
from airflow_provider.exceptions import RequestGoneError
from airflow_provider.lineage import SolveLineageMixin
from airflow_provider.protocol import rules
from airflow_provider.protocol.cuopt import OUTPUT_URI_WHY, check_poll_seconds

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider.hooks.cuopt import CuOptHook


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
    the task with what NVCF/cuOpt said, naming the request and asset ids.

    :param req_id: NVCF request id (templated, e.g. ``CuOptSolveOperator(...).output``).
    :param output_uri: file URI, or folder ending in ``/`` (templated). Required.
    :param asset_id: input asset to delete afterwards (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='solve', key='asset_id') }}"``.
    :param poll_seconds: NVCF long-poll window of each status call (poke mode: per poke).
    :param cuopt_conn_id: Airflow connection (type ``cuopt``).
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
        cuopt_conn_id: str = "cuopt_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        rules.required("output_uri", output_uri, OUTPUT_URI_WHY)
        self.req_id = req_id
        self.output_uri = output_uri
        self.asset_id = asset_id
        self.poll_seconds = check_poll_seconds(poll_seconds)
        self.deferrable = deferrable
        self.cuopt_conn_id = cuopt_conn_id

    @cached_property
    def hook(self) -> CuOptHook:
        from airflow_provider.hooks.cuopt import CuOptHook  # lazy: keeps DAG parsing fast

        return CuOptHook(self.cuopt_conn_id)

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
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        asset_id = _optional(self.asset_id)
        try:
            invocation = self.hook.poll(self.req_id, self.poll_seconds)
        except RequestGoneError:
            from airflow_provider.hooks.cuopt_results import gone_outcome

            event = gone_outcome(self.req_id, asset_id, self.output_uri)
            if event.output_paths:
                self.log.info(
                    "NVCF request %s was already received and stored at %s", self.req_id, event.output_paths
                )
            return PokeReturnValue(is_done=True, xcom_value=self._finish(event))
        if invocation.pending:
            self.log.info("NVCF request %s is %s", self.req_id, invocation.status.value)
            return False
        event = self.hook.outcome_event(invocation, asset_id, self.output_uri)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(event))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str]:
        return self._finish(CuOptSolveEvent.from_payload(event))

    def _finish(self, event: CuOptSolveEvent) -> list[str]:
        paths = self.hook.finish(event)
        record_output_assets(None, self, paths, solve_extra("cuopt", event.req_id, event.status.value))
        return paths
