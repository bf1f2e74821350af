"""Submit a Nextmv Cloud run (inline or streamed upload), optionally wait for it and store its output."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, BaseOperatorLink, XCom, conf

from airflow_provider.assets import record_output_assets
from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus, event_from_metadata
from airflow_provider.events.summary import KeptSummary
from airflow_provider.exceptions import InvalidInputError, ServiceHTTPError
from airflow_provider.lineage import SolveLineageMixin
from airflow_provider.protocol import rules
from airflow_provider.protocol.nextmv import RunStatus, check_input_format, run_status, task_marker
from airflow_provider.protocol.outcomes import (
    DEFAULT_REMOTE_LOG_MAX_BYTES,
    check_on_infeasible,
    check_remote_log_max_bytes,
    failed_on_input,
)
from airflow_provider.utils import resume
from airflow_provider.utils.polling import DEFAULT_MAX_POLL_INTERVAL, DEFAULT_POLL_INTERVAL

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, TaskInstanceKey

    from airflow_provider.hooks.nextmv import NextmvHook

DEFAULT_TIMEOUT = timedelta(days=7)
#: Task-state-store key (Airflow 3.3+) under which the submitted run is remembered across tries.
RUN_STATE_KEY = "nextmv_run"


class NextmvRunLink(BaseOperatorLink):
    """Link to the run's page in the Nextmv console.

    Airflow 3 computes a task's links in the worker once the task ends (``finalize``), on the very
    operator that ran, and stores them for the UI. The link is read from that operator
    (``run_url``, set as soon as a run exists) rather than looked up as an XCom: a lookup of an XCom
    that was never pushed (a submit that failed) makes Airflow log ``ERROR XCom not found``, a
    second error line that sends users after the wrong problem.
    """

    name = "Nextmv run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        if hasattr(operator, "run_url"):
            return getattr(operator, "run_url", None) or ""
        return XCom.get_value(key="run_url", ti_key=ti_key) or ""  # another operator class


class NextmvRunOperator(SolveLineageMixin, BaseOperator):
    """Start a run of a Nextmv Cloud application.

    Small JSON inputs (≤ 5 MiB) go inline; larger or non-JSON inputs are streamed from
    ``input_uri`` (local path or any smart-open URI: ``s3://``, ``gs://``, ``https://``...) to
    Nextmv's presigned upload URL with an exact Content-Length, never read whole into memory.
    Inputs over 500 MB fail before any network call.

    XComs: ``run_id`` and ``run_url`` right after submission; ``return_value`` = the run id (so
    ``NextmvRunSensor(run_id=op.output)`` chains); ``output_paths`` when the operator waited
    and wrote ``output_uri``.

    A retried task re-attaches to the run it already started (Airflow 3.3+ task state store)
    instead of submitting a duplicate, unless that run failed or was canceled; a run that failed on
    its input is not submitted again: the task fails the same way, without retries.

    Outcomes (``docs/outcomes.md``): the XCom ``solution_summary`` says how the run ended (status,
    the app's objective and metrics, instance, version, link), also before a failure; a run that
    failed on invalid input and an app-reported infeasible/unbounded result fail without retries;
    the run log is copied into the task log (bounded by ``remote_log_max_bytes``).

    :param app_id: Nextmv application id.
    :param instance_id: app instance (default: the app's default instance).
    :param input: the input as a JSON-serializable dict (templated).
    :param input_uri: where to read the input from instead (templated).
    :param input_format: ``json`` (default), ``text``, ``multi-file`` or ``csv-archive``
        (a local folder is packed into a tar.gz; any other URI must already be one).
    :param options: run options; values are stringified as the Nextmv SDK does.
    :param name: run name. :param description: run description.
    :param configuration: run configuration, sent verbatim (default: formats derived from the input).
    :param wait_for_completion: wait for the run to end (default True).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: first delay between status polls, seconds (grows ×1.5 up to
        ``max_poll_interval``).
    :param timeout: how long to wait (seconds or timedelta, default 7 days); on expiry the run is
        canceled and the task fails.
    :param output_uri: when waiting, where to write the output: a file URI, or a folder ending in
        ``/`` (``<run_id>.json`` inside; multi-file outputs unpacked there).
    :param on_infeasible: ``"fail"`` (default) or ``"succeed"``: with ``"succeed"`` a run whose app
        reports infeasible/unbounded ends the task successfully (the summary says so).
    :param remote_log_max_bytes: the run log copied into the task log, its last this many bytes
        (default 64 KiB; 0 = none).
    :param nextmv_conn_id: Airflow connection (type ``nextmv``).
    """

    template_fields: Sequence[str] = (
        "app_id",
        "instance_id",
        "input",
        "input_uri",
        "options",
        "name",
        "description",
        "configuration",
        "output_uri",
        "nextmv_conn_id",
    )
    template_fields_renderers = {"input": "json", "options": "json", "configuration": "json"}
    operator_extra_links = (NextmvRunLink(),)
    ui_color = "#c7e9f9"
    lineage_service = "nextmv"

    def __init__(
        self,
        *,
        app_id: str,
        instance_id: str | None = None,
        input: Any = None,
        input_uri: str | None = None,
        input_format: str = "json",
        options: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
        configuration: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        timeout: float | timedelta | None = None,
        output_uri: str | None = None,
        on_infeasible: str = "fail",
        remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
        nextmv_conn_id: str = "nextmv_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        rules.exactly_one(("input", input), ("input_uri", input_uri), "a dict, or a path or URI")
        check_input_format(input_format)
        if output_uri and not wait_for_completion:
            raise InvalidInputError(
                "output_uri needs wait_for_completion=True (or use NextmvRunSensor to fetch it)"
            )
        poll_interval, max_poll_interval = rules.poll_settings(poll_interval, max_poll_interval)
        self.app_id = app_id
        self.instance_id = instance_id
        self.input = input
        self.input_uri = input_uri
        self.input_format = input_format
        self.options = options
        self.name = name
        self.description = description
        self.configuration = configuration
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = rules.timeout_seconds(timeout, DEFAULT_TIMEOUT)
        self.output_uri = output_uri
        self.on_infeasible = check_on_infeasible(on_infeasible)
        self.remote_log_max_bytes = check_remote_log_max_bytes(remote_log_max_bytes)
        self.nextmv_conn_id = nextmv_conn_id
        self.run_id: str | None = None
        #: The run's console page once a run exists (what :class:`NextmvRunLink` shows).
        self.run_url: str | None = None

    @cached_property
    def hook(self) -> NextmvHook:
        from airflow_provider.hooks.nextmv import NextmvHook  # lazy: keeps DAG parsing fast

        return NextmvHook(self.nextmv_conn_id)

    def execute(self, context: Context) -> str:
        run_id = self._reattach(context) or self._submit(context)
        self.run_id = run_id
        self.run_url = self.hook.console_url(self.app_id, run_id)
        context["ti"].xcom_push(key="run_id", value=run_id)
        context["ti"].xcom_push(key="run_url", value=self.run_url)
        if not self.wait_for_completion:
            return run_id
        deadline = time.time() + self.timeout
        if self.deferrable:
            event = event_from_metadata(self.app_id, run_id, self.hook.get_run_metadata(self.app_id, run_id))
            if event is None:  # only defer when there is something to wait for
                from airflow_provider.triggers.nextmv import NextmvRunTrigger

                self.defer(
                    trigger=NextmvRunTrigger(
                        app_id=self.app_id,
                        run_id=run_id,
                        end_time=deadline,
                        nextmv_conn_id=self.nextmv_conn_id,
                        poll_interval=self.poll_interval,
                        max_poll_interval=self.max_poll_interval,
                    ),
                    method_name="execute_complete",
                    timeout=None,  # the trigger owns the deadline, so a timeout can cancel the run
                )
        else:
            event = self.hook.wait_for_run(
                self.app_id,
                run_id,
                deadline=deadline,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
            )
        return self._complete(context, event)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        return self._complete(context, NextmvRunEvent.from_payload(event))

    def _complete(self, context: Context, event: NextmvRunEvent) -> str:
        """The one completion of every path (fresh, re-attached; sync or deferred). A run that ended
        on the service is done with, failure included: a retry or a cleared task submits anew
        (except a run that failed on its input, see :meth:`_reattach`); a failed wait stays
        re-attachable."""
        self.run_id = event.run_id
        self.run_url = self.hook.console_url(event.app_id, event.run_id)
        if event.status is not RunEventStatus.ERROR:
            resume.completed(context, RUN_STATE_KEY)
        summary = KeptSummary(context)
        paths = self.hook.finish(
            event,
            output_uri=self.output_uri,
            on_infeasible=self.on_infeasible,
            remote_log_max_bytes=self.remote_log_max_bytes,
            publish=summary,
        )
        if self.output_uri:
            context["ti"].xcom_push(key="output_paths", value=paths)
        record_output_assets(context, self, paths, summary.asset_extra(), [self.input_uri])
        return event.run_id

    # -------------------------------------------------------------------------------- submit / resume
    def _task_marker(self, context: Context) -> str | None:
        identity = resume.task_identity(context)
        return task_marker(*identity) if identity else None

    def _submit(self, context: Context) -> str:
        run_id = self.hook.submit_run(
            self.app_id,
            instance_id=self.instance_id,
            input=self.input,
            input_uri=self.input_uri,
            input_format=self.input_format,
            name=self.name,
            description=self.description,
            options=self.options,
            configuration=self.configuration,
            task_marker=self._task_marker(context),
        )
        resume.remember(context, RUN_STATE_KEY, {"app_id": self.app_id, "run_id": run_id})
        return run_id

    def _reattach(self, context: Context) -> str | None:
        """The run an earlier try of this task left in flight, if it is still worth waiting for.

        From the task state store (Airflow 3.3+); without one, on a retry, from the runs on
        Nextmv that carry this task's marker.
        """
        record = resume.in_flight(context, RUN_STATE_KEY)
        if record is not None and record.get("app_id") == self.app_id and record.get("run_id"):
            candidate = str(record["run_id"])
        elif (
            not resume.has_store(context)
            and resume.is_retry(context)
            and (marker := self._task_marker(context))
        ):
            runs = self.hook.find_task_runs(self.app_id, marker)
            if not runs:
                return None
            candidate = str(runs[0]["id"])
        else:
            return None
        try:
            metadata = self.hook.get_run_metadata(self.app_id, candidate)
            status = run_status(metadata)
        except ServiceHTTPError as exc:
            if exc.status_code == 404:
                self.log.warning(
                    "Run %s from an earlier try no longer exists; submitting a new run", candidate
                )
                return None
            raise
        if status is RunStatus.FAILED and failed_on_input(metadata):
            self.log.warning(
                "Run %s from an earlier try failed on its input; ending as it did (not submitting it again)",
                candidate,
            )
            return candidate
        if status.is_terminal and status is not RunStatus.SUCCEEDED:
            self.log.warning(
                "Run %s from an earlier try ended %s; submitting a new run", candidate, status.value
            )
            return None
        self.log.info("Re-attaching to Nextmv run %s (%s) started by an earlier try", candidate, status.value)
        return candidate

    def on_kill(self) -> None:
        """The task was killed while waiting in a worker: cancel the remote run (best effort)."""
        if self.run_id:
            self.hook.cancel_best_effort(self.app_id, self.run_id)
