"""Solve a cuOpt problem on NVCF or a self-hosted cuOpt server (chosen by the connection's type):
send it inline or streamed and zlib-compressed; wait; store the result."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider.assets import record_output_assets
from airflow_provider.events.cuopt import ENDED_ON_SERVICE, CuOptSolveEvent
from airflow_provider.events.summary import KeptSummary
from airflow_provider.exceptions import RequestGoneError
from airflow_provider.lineage import SolveLineageMixin
from airflow_provider.protocol import rules
from airflow_provider.protocol.cuopt import (
    DEFAULT_POLL_SECONDS,
    OUTPUT_URI_WHY,
    Invocation,
    check_poll_seconds,
)
from airflow_provider.protocol.outcomes import (
    DEFAULT_REMOTE_LOG_MAX_BYTES,
    check_on_infeasible,
    check_remote_log_max_bytes,
)
from airflow_provider.utils import resume

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider.hooks.cuopt import CuOptHook
    from airflow_provider.hooks.cuopt_server import CuOptServerHook

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
    id; ``output_paths`` once the result is stored; ``solution_summary`` (status, objective, bound,
    gap, solve time, paths: see ``docs/outcomes.md``) whenever the solve ended, also before a failure.

    Outcomes: an infeasible or unbounded result, and a problem cuOpt refuses as invalid, fail the task
    without retries (``InfeasibleError`` / ``InvalidProblemError``); service and transport failures
    stay retryable. A retry that finds the stored result of an earlier try ends exactly as that
    result says.

    :param problem: the cuOpt problem as a dict (templated).
    :param problem_uri: where to read it instead: local path or any smart-open URI (templated);
        a file that is already zlib-compressed JSON is uploaded as it is.
    :param output_uri: file URI, or folder ending in ``/`` (``<req_id>.json`` inside) (templated).
    :param function_id: overrides the connection's function choice: a function id,
    :param function_name: or a function name (its newest ACTIVE version by default),
    :param function_version_id: with, optionally, a version id.
    :param action: cuOpt ``action`` (optional; cuOpt infers LP vs routing from the data).
    :param poll_seconds: NVCF long-poll window per call (1–300, default 30).
    :param wait_for_completion: wait for the result (default True); otherwise return after the
        invocation is accepted and let ``CuOptSolveSensor`` wait.
    :param deferrable: wait in the triggerer.
    :param timeout: how long to wait (default 1 h, NVCF's own cap); the task then fails.
    :param on_infeasible: ``"fail"`` (default) or ``"succeed"``: with ``"succeed"`` an infeasible or
        unbounded result ends the task successfully and the ``solution_summary`` says so.
    :param remote_log_max_bytes: cuOpt's notes and warnings copied into the task log, at most this
        many bytes of each (the last ones; 0 = none).
    :param cuopt_conn_id: Airflow connection: type ``cuopt`` (NVCF) or ``cuopt_server`` (a
        self-hosted cuOpt server: the problem is POSTed to ``/cuopt/request``, JSON or zlib-JSON, and
        the job polled about once a second, backing off to ``poll_seconds``; no assets).
    :param mps_format: read ``problem_uri`` as an MPS file (``"auto"`` or ``"fixed"``), converted to
        cuOpt's LPData on the worker with HiGHS; ``.mps``/``.mps.gz``/``.mps.bz2`` names are read so
        without it. QP is refused.
    :param validation_only: self-hosted server only: check the problem without solving.
    :param solver_logs: self-hosted server only: copy the end of the solver log into the task log.
    :param warmstart_id: self-hosted server only: PDLP warm start from an earlier LP request.
    :param initial_ids: self-hosted server only: VRP initial solutions from earlier requests.
    :param keep_on_server: self-hosted server only: keep the solution and log on the server after
        the result is stored (deleted by default).
    """

    template_fields: Sequence[str] = (
        "problem",
        "problem_uri",
        "output_uri",
        "function_id",
        "function_name",
        "function_version_id",
        "action",
        "warmstart_id",
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
        on_infeasible: str = "fail",
        remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
        cuopt_conn_id: str = "cuopt_default",
        mps_format: str | None = None,
        validation_only: bool = False,
        solver_logs: bool = False,
        warmstart_id: str | None = None,
        initial_ids: Sequence[str] | None = None,
        keep_on_server: bool = False,
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
        self.on_infeasible = check_on_infeasible(on_infeasible)
        self.remote_log_max_bytes = check_remote_log_max_bytes(remote_log_max_bytes)
        self.cuopt_conn_id = cuopt_conn_id
        self.mps_format = mps_format
        self.validation_only = validation_only
        self.solver_logs = solver_logs
        self.warmstart_id = warmstart_id
        self.initial_ids = list(initial_ids or [])
        self.keep_on_server = keep_on_server
        self.asset_id: str | None = None
        self.req_id: str | None = None

    @cached_property
    def hook(self) -> CuOptHook | CuOptServerHook:
        from airflow_provider.hooks.cuopt_backends import cuopt_hook_for  # lazy: keeps DAG parsing fast
        from airflow_provider.protocol.cuopt_server import SubmitOptions

        options = SubmitOptions.of(
            validation_only=self.validation_only,
            solver_logs=self.solver_logs,
            warmstart_id=self.warmstart_id,
            initial_ids=self.initial_ids,
        )
        return cuopt_hook_for(self.cuopt_conn_id, options=options, keep_on_server=self.keep_on_server)

    def execute(self, context: Context) -> str:
        deadline = time.time() + self.timeout
        answer, asset_id = self._reattach(context) or self._submit(context)
        req_id = self.req_id = answer.req_id  # also for OpenLineage facets when the task then fails
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
                    conn_type=self.hook.conn_type,
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

        with prepare_problem(
            self.problem, self.problem_uri, mps_format=self.mps_format
        ) as prepared:  # all local checks first
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
        self.req_id = invocation.req_id
        self.log.info(
            "%s request %s accepted (%s)",
            self.hook.service,
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
            event = self.hook.gone_outcome(req_id, asset_id, self.output_uri)
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
            "Re-attaching to %s request %s (%s) started by an earlier try",
            self.hook.service,
            req_id,
            invocation.status.value,
        )
        return invocation, asset_id

    def _remember_asset(self, asset_id: str) -> None:
        self.asset_id = asset_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        return self._complete(context, CuOptSolveEvent.from_payload(event))

    def _complete(self, context: Context, event: CuOptSolveEvent) -> str:
        """The one completion of every path (fresh, re-attached, stored by an earlier try; sync or
        deferred). A request that ended on the service side is done with, failure included: a
        retry submits anew (a cleared task too); a timeout or a failed wait stays re-attachable."""
        self.asset_id = None if event.asset_deleted else event.asset_id
        if event.output_paths:
            context["ti"].xcom_push(key="output_paths", value=list(event.output_paths))
        if event.status in ENDED_ON_SERVICE:
            resume.completed(context, REQUEST_STATE_KEY)
        summary = KeptSummary(context)
        paths = self.hook.finish(
            event,
            on_infeasible=self.on_infeasible,
            remote_log_max_bytes=self.remote_log_max_bytes,
            publish=summary,
        )
        record_output_assets(context, self, paths, summary.asset_extra(), [self.problem_uri])
        return event.req_id

    def on_kill(self) -> None:
        """A self-hosted server's job is aborted; NVCF cannot cancel an exec request, so at least the
        input asset is not left behind."""
        self.hook.delete_asset_best_effort(self.asset_id)
        cancel = getattr(self.hook, "cancel_best_effort", None)
        if cancel is not None:
            cancel(self.req_id)
