"""The outcome policy: how a finished solve ends the task, for every backend (pure decisions).

Deterministic failures fail at once, without retries (``PermanentError`` subclasses): the service
refused the problem as invalid, or the solver proved it infeasible or unbounded. Everything that
another try may cure stays retryable. ``on_infeasible="succeed"`` turns "no solution exists" into a
successful task whose ``solution_summary`` says so. The table is in ``docs/outcomes.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_provider.events.summary import SolveStatus
from airflow_provider.exceptions import (
    InfeasibleError,
    InvalidInputError,
    InvalidProblemError,
    OptimizationError,
    RunFailedError,
    RunTimeoutError,
    ServiceUnavailableError,
)
from airflow_provider.protocol.nextmv import run_error_message

ON_INFEASIBLE = ("fail", "succeed")
#: Default bound of the remote log (Nextmv run log, cuOpt notes and warnings) copied into the task log.
DEFAULT_REMOTE_LOG_MAX_BYTES = 64 * 1024
#: NVCF ``errorCode`` values that are the cuOpt container refusing the problem itself (its HTTP
#: status: 400 validation, 409 invalid solver state, 413 too large, 415 media type, 422 invalid data).
INVALID_PROBLEM_CODES = frozenset({400, 409, 413, 415, 422})
#: A failed Nextmv run whose error says its input or options are unusable (app-defined text: the
#: wording of the SDKs' and the emulator's apps, and common JSON/validation errors).
_INVALID_INPUT = re.compile(
    r"\b(invalid|validation|malformed|not valid json|unmarshal|cannot decode|could not decode|"
    r"failed to decode|parse error|schema|bad input|no input)\b",
    re.IGNORECASE,
)


def check_on_infeasible(value: str) -> str:
    """``on_infeasible`` must be ``"fail"`` or ``"succeed"`` (checked when the task is built)."""
    if value not in ON_INFEASIBLE:
        raise InvalidInputError(f"on_infeasible must be 'fail' or 'succeed', not {value!r}")
    return value


def check_remote_log_max_bytes(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"remote_log_max_bytes must be an integer >= 0 (0 = none), not {value!r}")
    return value


def invalid_problem_code(code: int | None) -> bool:
    """An NVCF ``errorCode`` that says cuOpt refused the problem (deterministic)."""
    return code in INVALID_PROBLEM_CODES


def nextmv_failure_status(message: str) -> SolveStatus:
    """A failed Nextmv run: :attr:`SolveStatus.INVALID` when its error names unusable input or
    options (the same input fails the same way), else :attr:`SolveStatus.ERROR` (an app crash or a
    platform failure, which a new run may not meet)."""
    return SolveStatus.INVALID if _INVALID_INPUT.search(message or "") else SolveStatus.ERROR


def failed_on_input(metadata_response: Mapping[str, Any]) -> bool:
    """A failed run's metadata says it failed on its input or options (see :func:`nextmv_failure_status`)."""
    return nextmv_failure_status(run_error_message(metadata_response)) is SolveStatus.INVALID


def failure_for(status: SolveStatus, on_infeasible: str, message: str) -> OptimizationError | None:
    """The exception a finished solve ends the task with, or None when the task succeeds."""
    if status.has_solution:
        return None
    if status.no_solution_exists:
        if on_infeasible == "succeed":
            return None
        return InfeasibleError(f"{message} (not retried: the same problem has no solution on every try)")
    if status is SolveStatus.INVALID:
        return InvalidProblemError(f"{message} (not retried: fix the problem or input first)")
    if status is SolveStatus.TIMEOUT:
        return RunTimeoutError(message)
    if status is SolveStatus.ERROR and not message:
        return ServiceUnavailableError("the solve ended without a usable answer")
    return RunFailedError(message)
