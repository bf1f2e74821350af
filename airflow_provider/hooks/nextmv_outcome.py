"""How a Nextmv run ends the task, in the worker, whatever ended the wait (sync wait, sensor poke,
deferrable resume, a run re-attached by a retry): output, the run log in the task log, the
``solution_summary`` (published before anything is raised), then the paths or the error the outcome
policy (:mod:`airflow_provider.protocol.outcomes`) names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus
from airflow_provider.events.summary import Publish, SolutionSummary, SolveStatus
from airflow_provider.exceptions import RunFailedError, RunTimeoutError, ServiceUnavailableError
from airflow_provider.protocol import outcomes as proto_outcomes
from airflow_provider.protocol.nextmv_summary import nextmv_summary
from airflow_provider.protocol.outcomes import DEFAULT_REMOTE_LOG_MAX_BYTES
from airflow_provider.utils.redact import redact_text

if TYPE_CHECKING:
    from airflow_provider.hooks.nextmv import NextmvHook

#: How each run outcome reads in the summary (a failed run is classified by its error text).
_RUN_STATUS = {
    RunEventStatus.SUCCEEDED: SolveStatus.SUCCEEDED,
    RunEventStatus.CANCELED: SolveStatus.CANCELED,
    RunEventStatus.TIMEOUT: SolveStatus.TIMEOUT,
}


def _summary_metadata(hook: NextmvHook, event: NextmvRunEvent) -> dict[str, Any] | None:
    """The run's metadata for its summary: required for a success (its output and figures), best
    effort otherwise (the failure itself must be what the task reports)."""
    if event.status is RunEventStatus.SUCCEEDED:
        return hook.get_run_metadata(event.app_id, event.run_id)
    try:
        return hook.get_run_metadata(event.app_id, event.run_id)
    except Exception as exc:
        hook.log.warning("Could not read the metadata of Nextmv run %s: %s", event.run_id, exc)
        return None


def _publish(
    publish: Publish | None,
    metadata: Mapping[str, Any] | None,
    event: NextmvRunEvent,
    status: SolveStatus,
    run_page: str,
    paths: list[str],
) -> SolutionSummary:
    summary = nextmv_summary(
        metadata,
        app_id=event.app_id,
        run_id=event.run_id,
        run_status=status,
        link=run_page,
        output_paths=paths,
        message=redact_text(event.message, 1000),
    )
    if publish is not None:
        publish(summary)
    return summary


def finish_run(
    hook: NextmvHook,
    event: NextmvRunEvent,
    *,
    output_uri: str | None,
    cancel_on_timeout: bool = True,
    on_infeasible: str = "fail",
    remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
    publish: Publish | None = None,
) -> list[str]:
    """What operator and sensor do once a wait ends, in either mode: output, the run log in the
    task log, the ``solution_summary`` (to ``publish``, before anything is raised), then the paths
    or the error the outcome policy (``protocol/outcomes.py``) names."""
    run_page = hook.console_url(event.app_id, event.run_id)
    if event.status is RunEventStatus.ERROR:
        _publish(publish, None, event, SolveStatus.ERROR, run_page, [])
        raise ServiceUnavailableError(f"Waiting for Nextmv run {event.run_id} failed: {event.message}")
    if event.status is RunEventStatus.TIMEOUT and cancel_on_timeout:
        hook.cancel_best_effort(event.app_id, event.run_id)
    metadata = _summary_metadata(hook, event)
    paths: list[str] = []
    if event.status is RunEventStatus.SUCCEEDED and output_uri:
        paths = hook.download_output(event.app_id, event.run_id, output_uri, metadata=metadata)
    hook.log_run_log(event.app_id, event.run_id, remote_log_max_bytes)
    status = _RUN_STATUS.get(event.status) or proto_outcomes.nextmv_failure_status(event.message)
    summary = _publish(publish, metadata, event, status, run_page, paths)
    if event.status is RunEventStatus.TIMEOUT:
        raise RunTimeoutError(
            f"{event.message}; " + ("it was canceled." if cancel_on_timeout else "it was left running.")
        )
    if event.status is RunEventStatus.SUCCEEDED:
        message = (
            f"Nextmv run {event.run_id} (app {event.app_id}) succeeded, but the app reports "
            f"{summary.status.value}; output kept at {paths}. Run page: {run_page}"
        )
        error = proto_outcomes.failure_for(summary.status, on_infeasible, message)
        if error is not None:
            raise error
        hook.log.info("Nextmv run %s succeeded (%s)", event.run_id, summary.status.value)
        return paths
    verb = "failed" if event.status is RunEventStatus.FAILED else "was canceled"
    message = (
        f"Nextmv run {event.run_id} (app {event.app_id}) {verb}: {event.message or 'no details given'}. "
        f"Run page: {run_page}"
    )
    raise proto_outcomes.failure_for(summary.status, on_infeasible, message) or RunFailedError(message)
