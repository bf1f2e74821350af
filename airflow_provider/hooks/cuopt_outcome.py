"""How a cuOpt solve ends the task, in the worker, for every cuOpt backend (NVCF and self-hosted).

One completion path whatever ended the wait (fresh solve, re-attached request, the stored result of
an earlier try; sync, sensor poke or deferrable resume): the summary is read back from the stored
result file (bounded, :func:`~airflow_provider.hooks.cuopt_results.read_summary`), cuOpt's notes and
warnings are copied into the task log, the ``solution_summary`` is published, and the outcome policy
(:mod:`airflow_provider.protocol.outcomes`) decides. A stored infeasible result therefore fails a
retry exactly as it failed the first try — never a success.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus
from airflow_provider.events.summary import Publish, SolutionSummary, SolveStatus
from airflow_provider.exceptions import ServiceUnavailableError
from airflow_provider.hooks.cuopt_results import MAX_SUMMARY_READ_BYTES, read_summary
from airflow_provider.protocol.cuopt_results import cuopt_summary
from airflow_provider.protocol.outcomes import (
    DEFAULT_REMOTE_LOG_MAX_BYTES,
    failure_for,
    invalid_problem_code,
)
from airflow_provider.utils.redact import redact_text
from airflow_provider.utils.remote_logs import log_remote_lines

_EVENT_STATUS = {
    SolveEventStatus.SUCCEEDED: SolveStatus.SUCCEEDED,
    SolveEventStatus.INFEASIBLE: SolveStatus.ERROR,  # the stored file could not be read back
    SolveEventStatus.TIMEOUT: SolveStatus.TIMEOUT,
    SolveEventStatus.ERROR: SolveStatus.ERROR,
}


def event_summary(event: CuOptSolveEvent, service: str) -> SolutionSummary:
    """The summary of an event without a readable stored result (failed, timed out, unreadable)."""
    if event.status is SolveEventStatus.FAILED:
        status = SolveStatus.INVALID if invalid_problem_code(event.error_code) else SolveStatus.ERROR
    else:
        status = _EVENT_STATUS[event.status]
    return SolutionSummary(
        service=service,
        run_id=event.req_id,
        status=status,
        output_paths=event.output_paths,
        message=redact_text(event.message, 1000),
    )


def summarize_event(
    event: CuOptSolveEvent,
    *,
    service: str,
    logger: logging.Logger | Any,
    remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
) -> SolutionSummary:
    """The event's summary, from its stored result when there is one; logs cuOpt's notes/warnings."""
    if not event.output_paths:
        return event_summary(event, service)
    try:
        result = read_summary(event.output_paths[0], max_bytes=MAX_SUMMARY_READ_BYTES)
    except Exception as exc:  # the outcome must not hang on a summary; the event still decides
        logger.warning("Could not read the stored cuOpt result back for its summary: %s", exc)
        return event_summary(event, service)
    log_remote_lines(logger, f"cuOpt notes of request {event.req_id}", result.notes, remote_log_max_bytes)
    log_remote_lines(
        logger, f"cuOpt warnings of request {event.req_id}", result.warnings, remote_log_max_bytes
    )
    return cuopt_summary(
        result,
        service=service,
        run_id=event.req_id,
        output_paths=event.output_paths,
        message=redact_text(event.message, 1000),
    )


def finish_solve(
    event: CuOptSolveEvent,
    *,
    service: str,
    describe: str,
    logger: logging.Logger | Any,
    on_infeasible: str = "fail",
    remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
    publish: Publish | None = None,
    timeout_note: str = "",
) -> list[str]:
    """Summarise, publish, then return the stored paths or raise what the outcome policy says.

    :param describe: how messages name the request (e.g. ``"NVCF request X, asset Y"``).
    :param publish: receives the summary before anything is raised (the operators push it as XCom).
    :param timeout_note: appended to the timeout error (e.g. whether the backend could cancel).
    """
    summary = summarize_event(
        event, service=service, logger=logger, remote_log_max_bytes=remote_log_max_bytes
    )
    if event.status is SolveEventStatus.SUCCEEDED and not summary.status.has_solution:
        # the receiver judged the whole result usable; a bounded read back must not overrule it
        summary = replace(summary, status=SolveStatus.SUCCEEDED)
    if publish is not None:
        publish(summary)
    paths = list(event.output_paths)
    if event.status is SolveEventStatus.SUCCEEDED:
        logger.info("%s succeeded (%s); result at %s", describe, summary.status.value, ", ".join(paths))
        return paths
    if event.status is SolveEventStatus.INFEASIBLE:
        status = summary.status if not summary.status.has_solution else SolveStatus.ERROR
        message = f"cuOpt found no solution ({describe}): {event.message}. Result kept at {paths}"
    elif event.status is SolveEventStatus.TIMEOUT:
        status, message = SolveStatus.TIMEOUT, f"{event.message} ({describe}){timeout_note}"
    elif event.status is SolveEventStatus.ERROR:
        raise ServiceUnavailableError(f"Waiting for {describe} failed: {event.message}")
    else:
        status, message = summary.status, f"{describe} failed: {event.message}"
    error = failure_for(status, on_infeasible, message)
    if error is None:
        logger.warning(
            "%s: cuOpt says %s; the task succeeds (on_infeasible='succeed'); result at %s",
            describe,
            status.value,
            ", ".join(paths),
        )
        return paths
    raise error
