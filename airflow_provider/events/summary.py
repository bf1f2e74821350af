"""The one solution-summary schema of every backend: what a DAG can act on without opening the result.

Every operator and sensor that ends a solve (Nextmv, cuOpt on NVCF, self-hosted cuOpt) pushes
:meth:`SolutionSummary.to_xcom` as the XCom ``solution_summary`` — on success, and before it raises
on a failure whose result is known — so a ``BranchPythonOperator``, a HITL body or an asset's
``extra`` can read the status and the objective. It is small by construction: ids, a status word,
a few numbers, paths and a link; never the solution. The ``metrics`` a Nextmv app reports are kept
only while they serialise to at most :data:`MAX_METRICS_BYTES`.

Each service's own words map to :class:`SolveStatus` by pure functions beside that service's
protocol code (``protocol/nextmv_summary.py``, ``protocol/cuopt_results.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: Largest ``metrics`` object (compact JSON) kept in a summary; a bigger one is replaced by a note.
MAX_METRICS_BYTES = 16 * 1024
#: Longest ``message`` kept in a summary.
MAX_SUMMARY_MESSAGE_CHARS = 1000
#: XCom key of the summary.
SUMMARY_XCOM_KEY = "solution_summary"


class SolveStatus(str, Enum):
    """How a solve ended, in one vocabulary for every backend (the value is what the XCom holds)."""

    #: Proven optimal (within the solver's tolerances/gap).
    OPTIMAL = "optimal"
    #: A feasible solution, not proven optimal (routing heuristics, a MILP incumbent).
    FEASIBLE = "feasible"
    #: The service reports success but names no solver status (a Nextmv app without one).
    SUCCEEDED = "succeeded"
    #: Stopped at its time limit; the result may hold the best solution found so far.
    TIME_LIMIT = "time_limit"
    #: Stopped at an iteration limit without an acceptable solution.
    ITERATION_LIMIT = "iteration_limit"
    #: The problem has no feasible solution.
    INFEASIBLE = "infeasible"
    #: The objective is unbounded (LP "dual infeasible").
    UNBOUNDED = "unbounded"
    #: The service refused the problem or input as invalid (validation error, 4xx).
    INVALID = "invalid"
    #: The solve failed for another reason (service error, app crash, unreadable result).
    ERROR = "error"
    #: The remote run was canceled.
    CANCELED = "canceled"
    #: The task's own deadline passed before an answer.
    TIMEOUT = "timeout"

    @property
    def has_solution(self) -> bool:
        """The task succeeds with this status (a usable result was stored)."""
        return self in _USABLE

    @property
    def no_solution_exists(self) -> bool:
        """Infeasible or unbounded: the model itself has no (bounded) solution."""
        return self in (SolveStatus.INFEASIBLE, SolveStatus.UNBOUNDED)


_USABLE = frozenset(
    {SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.SUCCEEDED, SolveStatus.TIME_LIMIT}
)

#: Solver words (lower-cased, "-"/" " as "_") and what they mean; shared by every mapper.
_WORDS = {
    "optimal": SolveStatus.OPTIMAL,
    "optimum": SolveStatus.OPTIMAL,
    "solved": SolveStatus.OPTIMAL,
    "feasible": SolveStatus.FEASIBLE,
    "feasiblefound": SolveStatus.FEASIBLE,
    "feasible_found": SolveStatus.FEASIBLE,
    "primalfeasible": SolveStatus.FEASIBLE,
    "suboptimal": SolveStatus.FEASIBLE,
    "sub_optimal": SolveStatus.FEASIBLE,
    "time_limit": SolveStatus.TIME_LIMIT,
    "timelimit": SolveStatus.TIME_LIMIT,
    "iteration_limit": SolveStatus.ITERATION_LIMIT,
    "iterationlimit": SolveStatus.ITERATION_LIMIT,
    "infeasible": SolveStatus.INFEASIBLE,
    "primalinfeasible": SolveStatus.INFEASIBLE,
    "primal_infeasible": SolveStatus.INFEASIBLE,
    "unbounded": SolveStatus.UNBOUNDED,
    "dualinfeasible": SolveStatus.UNBOUNDED,
    "dual_infeasible": SolveStatus.UNBOUNDED,
    "error": SolveStatus.ERROR,
    "notermination": SolveStatus.ERROR,
    "numerical_error": SolveStatus.ERROR,
}


def status_from_word(word: Any) -> SolveStatus | None:
    """A solver's status word (``"Optimal"``, ``"FeasibleFound"``, ``"time_limit"``, ``"infeasible"``…)
    as a :class:`SolveStatus`, or None for a word nobody defined (or a non-string)."""
    if not isinstance(word, str) or not word.strip():
        return None
    return _WORDS.get(word.strip().lower().replace("-", "_").replace(" ", "_"))


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite real number (bools and strings are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def bounded_metrics(metrics: Any) -> dict[str, Any] | None:
    """``metrics`` when it is an object whose compact JSON fits :data:`MAX_METRICS_BYTES`, else a note."""
    if not isinstance(metrics, Mapping) or not metrics:
        return None
    try:
        size = len(json.dumps(metrics, separators=(",", ":"), allow_nan=False, default=str).encode())
    except (TypeError, ValueError):
        return {"omitted": "the metrics are not plain JSON"}
    if size > MAX_METRICS_BYTES:
        return {"omitted": f"the metrics are {size:,} bytes of JSON, over the {MAX_METRICS_BYTES:,}-byte cap"}
    return dict(metrics)


@dataclass(frozen=True)
class SolutionSummary:
    """What one solve ended with. Fields a service does not report stay None.

    :param service: ``"nextmv"``, ``"cuopt-nvcf"`` or ``"cuopt-self-hosted"``.
    :param run_id: the Nextmv run id, or the cuOpt request id (NVCF / self-hosted ``reqId``).
    :param status: :class:`SolveStatus`.
    :param objective: the objective value of the solution (cuOpt primal objective or solution cost;
        Nextmv: the app's ``metrics``, or the older ``statistics.result.value``).
    :param best_bound: the best proven bound (MILP ``solution_bound``), where the solver reports one.
    :param gap: relative MIP gap, or the LP primal-dual gap, where reported.
    :param solve_time_s: seconds the solver (or the run) took, as the service reports it.
    :param output_paths: where the result was written.
    :param link: a page about the run (Nextmv console), if the service has one.
    :param message: the service's short reason when the solve did not succeed.
    :param problem_kind: cuOpt ``LP`` / ``MIP`` / ``routing`` (batch LP: of the first answer).
    :param app_id: Nextmv only: the application.
    :param instance_id: Nextmv only: the app instance the run used.
    :param version_id: Nextmv only: the app version the run used.
    :param execution_class: Nextmv only: the execution class the run ran on.
    :param metrics: the Nextmv run's ``metrics`` (bounded; see :func:`bounded_metrics`).
    """

    service: str
    run_id: str
    status: SolveStatus
    objective: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    solve_time_s: float | None = None
    output_paths: tuple[str, ...] = field(default_factory=tuple)
    link: str | None = None
    message: str = ""
    problem_kind: str | None = None
    app_id: str | None = None
    instance_id: str | None = None
    version_id: str | None = None
    execution_class: str | None = None
    metrics: dict[str, Any] | None = None

    def asset_extra(self) -> dict[str, Any]:
        """The facts an asset event of the written output carries (``airflow_provider.assets``)."""
        return {
            "service": self.service,
            "run_id": self.run_id,
            "status": self.status.value,
            "objective": finite_number(self.objective),
        }

    def to_xcom(self) -> dict[str, Any]:
        """The XCom value: JSON-safe, small, every key always present (None when unknown)."""
        return {
            "service": self.service,
            "run_id": self.run_id,
            "status": self.status.value,
            "objective": finite_number(self.objective),
            "best_bound": finite_number(self.best_bound),
            "gap": finite_number(self.gap),
            "solve_time_s": finite_number(self.solve_time_s),
            "output_paths": list(self.output_paths),
            "link": self.link,
            "message": self.message[:MAX_SUMMARY_MESSAGE_CHARS],
            "problem_kind": self.problem_kind,
            "app_id": self.app_id,
            "instance_id": self.instance_id,
            "version_id": self.version_id,
            "execution_class": self.execution_class,
            "metrics": bounded_metrics(self.metrics),
        }


#: What the completion code hands a summary to before it returns or raises.
Publish = Callable[["SolutionSummary"], None]


def summary_publisher(context: Mapping[str, Any]) -> Publish:
    """The callback that pushes a summary as the task's ``solution_summary`` XCom."""

    def publish(summary: SolutionSummary) -> None:
        context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary.to_xcom())

    return publish


class KeptSummary:
    """A :data:`Publish` that pushes the summary as the ``solution_summary`` XCom and keeps it, so
    what the task reports afterwards (the asset events of its outputs) says the same thing."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self._push = summary_publisher(context)
        self.summary: SolutionSummary | None = None

    def __call__(self, summary: SolutionSummary) -> None:
        self.summary = summary
        self._push(summary)

    def asset_extra(self) -> dict[str, Any]:
        """The kept summary's :meth:`SolutionSummary.asset_extra` (empty before one was published)."""
        return self.summary.asset_extra() if self.summary is not None else {}
