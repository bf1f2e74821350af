"""Solve a cuOpt problem on NVCF: inline or as a streamed, zlib-compressed asset; wait; store the result."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider.assets import record_output_assets, solve_extra
from airflow_provider.events.cuopt import CuOptSolveEvent
from airflow_provider.exceptions import RequestGoneError
from airflow_provider.lineage import SolveLineageMixin
from airflow_provider.protocol import rules
from airflow_provider.protocol.cuopt import (
    DEFAULT_POLL_SECONDS,
    OUTPUT_URI_WHY,
    Invocation,
    check_poll_seconds,
)
from airflow_provider.utils import resume

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider.hooks.cuopt import CuOptHook

#: NVCF caps a request end to end at one hour (then 408).
DEFAULT_TIMEOUT = timedelta(hours=1)
#: Task-state-store key (Airflow 3.3+) under which the request is remembered across tries.
REQUEST_STATE_KEY = "cuopt_request"


class CuOptSolveOperator(SolveLineageMixin, BaseOperator):
    """Send a cuOpt problem (routing, LP or MILP) to NVIDIA cuOpt on NVCF and store its result.

    Problems up to 250,000 bytes of JSON go inline; larger ones are streamed from ``problem_uri``
    (or serialized from ``problem``), zlib-compressed on the way to a temporary file, and uploaded
    as an NVCF asset — never held whole in memory, never pickled. The asset is deleted whatever
    the outcome. NVCF hands a result out only once, so ``output_uri`` is required: the result is
    stored there by whoever receives it (this task, its trigger, or ``CuOptSolveSensor``).

    XComs: ``req_id`` and ``asset_id`` right after the invocation; ``return_value`` = the request
    id; ``output_paths`` once the result is stored.

    :param problem: the cuOpt problem as a dict (templated).
    :param problem_uri: where to read it instead: local path or any smart-open URI (templated);
        a file that is already zlib-compressed JSON is uploaded as it is.
    :param output_uri: file URI, or folder ending in ``/`` (``<req_id>.json`` inside) (templated).
    :param function_id / function_name / function_version_id: override the connection's function
        choice (newest ACTIVE version of the name by default).
    :param action: cuOpt ``action`` (optional; cuOpt infers LP vs routing from the data).
    :param poll_seconds: NVCF long-poll window per call (1–300, default 30).
    :param wait_for_completion: wait for the result (default True); otherwise return after the
        invocation is accepted and let ``CuOptSolveSensor`` wait.
    :param deferrable: wait in the triggerer.
    :param timeout: how long to wait (default 1 h, NVCF's own cap); the task then fails.
    :param cuopt_conn_id: Airflow connection (type ``cuopt``).
    """

    template_fields: Sequence[str] = (
        "problem",
        "problem_uri",
        "output_uri",
        "function_id",
        "function_name",
        "function_version_id",
        "action",
        "cuopt_conn_id",
    )
    template_fields_renderers = {"problem": "json"}
    ui_color = "#76b900"
    lineage_service = "cuopt"
    lineage_id_attr = "req_id"

    def __init__(
        self,
        *,
        output_uri: str,
        problem: Any = None,
        problem_uri: str | None = None,
        function_id: str | None = None,
        function_name: str | None = None,
        function_version_id: str | None = None,
        action: str | None = None,
        poll_seconds: int = DEFAULT_POLL_SECONDS,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        timeout: float | timedelta | None = None,
        cuopt_conn_id: str = "cuopt_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        rules.exactly_one(("problem", problem), ("problem_uri", problem_uri), "a dict, or a path or URI")
        rules.required("output_uri", output_uri, OUTPUT_URI_WHY)
        self.problem = problem
        self.problem_uri = problem_uri
        self.output_uri = output_uri
        self.function_id = function_id
        self.function_name = function_name
        self.function_version_id = function_version_id
        self.action = action
        self.poll_seconds = check_poll_seconds(poll_seconds)
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.timeout = rules.timeout_seconds(timeout, DEFAULT_TIMEOUT)
        self.cuopt_conn_id = cuopt_conn_id
        self.asset_id: str | None = None

    @cached_property
    def hook(self) -> CuOptHook:
        from airflow_provider.hooks.cuopt import CuOptHook  # lazy: keeps DAG parsing fast

        return CuOptHook(self.cuopt_conn_id)

    def execute(self, context: Context) -> str:
        deadline = time.time() + self.timeout
        answer, asset_id = self._reattach(context) or self._submit(context)
        req_id = answer.req_id
        self.req_id = req_id  # for OpenLineage facets, also when the task then fails
        context["ti"].xcom_push(key="req_id", value=req_id)
        context["ti"].xcom_push(key="asset_id", value=asset_id)
        if isinstance(answer, CuOptSolveEvent):  # an earlier try's request, already ended and stored
            return self._complete(context, answer)
        if not answer.pending:  # answered within the first poll window
            return self._complete(context, self.hook.outcome_event(answer, asset_id, self.output_uri))
        if not self.wait_for_completion:
            return req_id
        if self.deferrable:
            from airflow_provider.triggers.cuopt import CuOptSolveTrigger

            self.defer(
                trigger=CuOptSolveTrigger(
                    req_id=req_id,
                    output_uri=self.output_uri,
                    end_time=deadline,
                    asset_id=asset_id,
                    poll_seconds=self.poll_seconds,
                    cuopt_conn_id=self.cuopt_conn_id,
                ),
                method_name="execute_complete",
                timeout=None,  # the trigger owns the deadline
            )
        event = self.hook.wait_for_result(
            req_id, asset_id, self.output_uri, deadline=deadline, poll_seconds=self.poll_seconds
        )
        return self._complete(context, event)

    def _submit(self, context: Context) -> tuple[Invocation, str | None]:
        from airflow_provider.hooks.cuopt_problems import prepare_problem

        with prepare_problem(self.problem, self.problem_uri) as prepared:  # all local checks first
            function = self.hook.resolve_function(
                self.function_id, self.function_name, self.function_version_id
            )
            try:
                invocation, asset_id = self.hook.submit(
                    prepared,
                    function,
                    poll_seconds=self.poll_seconds,
                    action=self.action,
                    on_asset=self._remember_asset,
                )
            except BaseException:
                self.hook.delete_asset_best_effort(self.asset_id)
                raise
        self.log.info(
            "NVCF request %s accepted (%s)",
            invocation.req_id,
            f"input asset {asset_id}" if asset_id else "inline input",
        )
        record = {"req_id": invocation.req_id, "asset_id": asset_id, "output_uri": self.output_uri}
        resume.remember(context, REQUEST_STATE_KEY, record)
        return invocation, asset_id

    def _reattach(self, context: Context) -> tuple[Invocation | CuOptSolveEvent, str | None] | None:
        """The request an earlier try of this task left in flight, if it can still deliver.

        A quick status poll tells: still pending → keep waiting for it; finished → its answer (stored
        at once); 404 → the one "look in storage" policy (``cuopt_results.gone_outcome``): a result that
        try stored ends this task as what it says (an infeasible result stays a failure); one that was
        handed out but never stored is lost, and a new request is submitted.
        """
        record = resume.in_flight(context, REQUEST_STATE_KEY)
        if record is None or record.get("output_uri") != self.output_uri or not record.get("req_id"):
            return None
        req_id, asset_id = str(record["req_id"]), record.get("asset_id")
        try:
            invocation = self.hook.poll(req_id, 1)
        except RequestGoneError:
            from airflow_provider.hooks.cuopt_results import gone_outcome

            event = gone_outcome(req_id, asset_id, self.output_uri)
            if event.output_paths:
                self.log.info(
                    "Request %s of an earlier try was already stored at %s (%s)",
                    req_id,
                    list(event.output_paths),
                    event.status.value,
                )
                return event, asset_id
            self.log.warning(
                "Request %s of an earlier try is gone and its result was not stored; solving again", req_id
            )
            self.hook.delete_asset_best_effort(asset_id)
            return None
        self.log.info(
            "Re-attaching to NVCF request %s (%s) started by an earlier try", req_id, invocation.status.value
        )
        return invocation, asset_id

    def _remember_asset(self, asset_id: str) -> None:
        self.asset_id = asset_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        return self._complete(context, CuOptSolveEvent.from_payload(event))

    def _complete(self, context: Context, event: CuOptSolveEvent) -> str:
        self.asset_id = None if event.asset_deleted else event.asset_id
        if event.output_paths:
            context["ti"].xcom_push(key="output_paths", value=list(event.output_paths))
        self.hook.finish(event)
        record_output_assets(
            context,
            self,
            event.output_paths,
            solve_extra("cuopt", event.req_id, event.status.value),
            [self.problem_uri],
        )
        resume.completed(context, REQUEST_STATE_KEY)
        return event.req_id

    def on_kill(self) -> None:
        """NVCF cannot cancel an exec request; at least do not leave the input asset behind."""
        self.hook.delete_asset_best_effort(self.asset_id)
