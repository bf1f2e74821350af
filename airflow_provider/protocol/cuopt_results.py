"""What a cuOpt result says, read the same way from a parsed dict or from a streamed large result.

Pure code, shared by every cuOpt backend (NVCF and self-hosted): the sync hook, the trigger and the
sensor decide success or failure here (:func:`solver_outcome`), and the ``solution_summary`` XCom is
built here (:func:`cuopt_summary`). cuOpt's own words — LP/MILP status names (``Optimal``,
``FeasibleFound``, ``PrimalInfeasible``, ``DualInfeasible``, ``TimeLimit``…), older integer codes,
routing's ``status`` 0/1 and ``solver_infeasible_response`` — map to
:class:`~airflow_provider.events.summary.SolveStatus` in :func:`answer_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from airflow_provider.events.summary import SolutionSummary, SolveStatus, finite_number, status_from_word

#: Solver statuses that mean "there is a usable solution" (LP/MILP names of cuOpt 25.x).
GOOD_STATUS_NAMES = frozenset({"Optimal", "FeasibleFound", "PrimalFeasible", "TimeLimit"})
#: Notes / warnings kept from one result (each cut to :data:`MAX_NOTE_CHARS`).
MAX_NOTES = 50
MAX_NOTE_CHARS = 2000
_SOLUTION_KEYS = ("solution", "vehicle_data", "num_vehicles")
_ROUTING_KEYS = ("vehicle_data", "num_vehicles")
#: cuOpt's older integer problem categories.
_CATEGORIES = {0: "LP", 1: "MIP", 2: "IP"}


@dataclass
class SolverAnswer:
    """One solver answer (several for a batch LP), without the solution itself."""

    status: Any = None
    has_solution: bool = False
    routing: bool = False
    category: str | None = None
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    solver_time: float | None = None

    @property
    def kind(self) -> str | None:
        return "routing" if self.routing else self.category


@dataclass
class ResultSummary:
    """What the provider needs to know about a cuOpt result, collected without keeping the result.

    Built from a parsed dict (:func:`summarize_result`) or from a streaming parse of a large result
    file (:class:`StreamingSummary`), so both paths share :func:`solver_outcome` and
    :func:`cuopt_summary`.
    """

    has_response: bool = False
    infeasible: bool = False
    answers: list[SolverAnswer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    total_solve_time: float | None = None


def _number(value: Any) -> float | None:
    return finite_number(float(value) if isinstance(value, Decimal) else value)


def _category(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value[:20]
    if isinstance(value, int) and not isinstance(value, bool):
        return _CATEGORIES.get(value)
    return None


def _answer(raw: Mapping[str, Any], *, infeasible: bool = False) -> SolverAnswer:
    answer = SolverAnswer(
        status=raw.get("status"),
        has_solution=any(key in raw for key in _SOLUTION_KEYS),
        routing=infeasible or any(key in raw for key in _ROUTING_KEYS),
        objective=_number(raw.get("solution_cost")),
    )
    solution = raw.get("solution")
    if isinstance(solution, Mapping):
        answer.category = _category(solution.get("problem_category"))
        answer.objective = _number(solution.get("primal_objective"))
        answer.solver_time = _number(solution.get("solver_time"))
        milp, lp = solution.get("milp_statistics"), solution.get("lp_statistics")
        if isinstance(milp, Mapping):
            answer.bound = _number(milp.get("solution_bound"))
            answer.gap = _number(milp.get("mip_gap"))
        if answer.gap is None and isinstance(lp, Mapping):
            answer.gap = _number(lp.get("gap"))
    return answer


def _texts(values: Any) -> list[str]:
    items = values if isinstance(values, list) else []
    return [str(v)[:MAX_NOTE_CHARS] for v in items if v][:MAX_NOTES]


def summarize_result(result: Any) -> ResultSummary:
    """The summary of a parsed result dict (a pure function of the result JSON)."""
    summary = ResultSummary()
    if not isinstance(result, Mapping):
        return summary
    if result.get("error"):
        summary.error = str(result["error"])[:MAX_NOTE_CHARS]
    summary.notes = _texts(result.get("notes"))
    summary.warnings = _texts(result.get("warnings"))
    response = result.get("response")
    if not isinstance(response, Mapping):
        return summary
    summary.has_response = True
    summary.total_solve_time = _number(response.get("total_solve_time"))
    infeasible = response.get("solver_infeasible_response")
    if "solver_infeasible_response" in response:
        summary.infeasible = True
        if isinstance(infeasible, Mapping):
            summary.answers.append(_answer(infeasible, infeasible=True))
        return summary
    solver = response.get("solver_response")
    for answer in solver if isinstance(solver, list) else ([solver] if solver is not None else []):
        if isinstance(answer, Mapping):
            summary.answers.append(_answer(answer))
    return summary


def answer_status(answer: SolverAnswer) -> SolveStatus:
    """cuOpt's status of one answer in the common vocabulary. Integers are cuOpt's older codes:
    routing 0 = solution, 1 = infeasible; LP 1 = optimal (with a solution)."""
    status = answer.status
    if isinstance(status, str):
        return status_from_word(status) or SolveStatus.ERROR
    if isinstance(status, int) and not isinstance(status, bool):
        if status == 0:
            return SolveStatus.FEASIBLE
        if status == 1:
            if not answer.has_solution:
                return SolveStatus.INFEASIBLE
            return SolveStatus.FEASIBLE if answer.routing else SolveStatus.OPTIMAL
    return SolveStatus.ERROR


def solve_status(summary: ResultSummary) -> SolveStatus:
    """The status of a whole result: the first answer without a usable solution decides (batch LP),
    else the first that is not optimal, else optimal."""
    if not summary.has_response:
        return SolveStatus.ERROR
    if summary.infeasible:
        return SolveStatus.INFEASIBLE
    if not summary.answers:
        return SolveStatus.ERROR
    statuses = [answer_status(a) for a in summary.answers]
    for status in statuses:
        if not status.has_solution:
            return status
    return next((s for s in statuses if s is not SolveStatus.OPTIMAL), SolveStatus.OPTIMAL)


def solver_outcome(summary: ResultSummary) -> tuple[bool, str]:
    """(ok, message): ok when :func:`solve_status` says a usable solution is there."""
    notes = ("; notes: " + "; ".join(summary.notes))[:1000] if summary.notes else ""
    if summary.error and not summary.has_response:
        return False, f"cuOpt error: {summary.error}"
    if not summary.has_response:
        return False, "cuOpt answer has no 'response' object"
    if summary.infeasible:
        return False, "cuOpt found the problem infeasible" + notes
    if not summary.answers:
        return False, "cuOpt answer has no solver_response" + notes
    for answer in summary.answers:
        status = answer_status(answer)
        if status.has_solution:
            continue
        if isinstance(answer.status, (str, int)) and not isinstance(answer.status, bool):
            return False, f"cuOpt solver status {answer.status} ({status.value})" + notes
        return False, f"cuOpt answer has an unreadable solver status {answer.status!r}"
    return True, ""


def cuopt_summary(
    summary: ResultSummary,
    *,
    service: str,
    run_id: str,
    output_paths: tuple[str, ...] | list[str] = (),
    message: str = "",
) -> SolutionSummary:
    """The ``solution_summary`` of a cuOpt result (any backend): status, objective, bound, gap and
    time of the first answer; cuOpt has no console page, so ``link`` stays None."""
    first = summary.answers[0] if summary.answers else SolverAnswer()
    status = solve_status(summary)
    if not message and not status.has_solution:
        message = solver_outcome(summary)[1]
    return SolutionSummary(
        service=service,
        run_id=run_id,
        status=status,
        objective=first.objective,
        best_bound=first.bound,
        gap=first.gap,
        solve_time_s=summary.total_solve_time if summary.total_solve_time is not None else first.solver_time,
        output_paths=tuple(output_paths),
        message=message,
        problem_kind=first.kind,
    )


def summary_of_result(
    result: Any, *, service: str, run_id: str, output_paths: tuple[str, ...] | list[str] = ()
) -> SolutionSummary:
    """:func:`cuopt_summary` of a parsed result dict."""
    return cuopt_summary(summarize_result(result), service=service, run_id=run_id, output_paths=output_paths)


_ANSWER_PREFIXES = (
    "response.solver_response",
    "response.solver_response.item",
    "response.solver_infeasible_response",
)
#: Fields below an answer's ``solution`` that the summary keeps (prefix suffix → attribute).
_SOLUTION_FIELDS = {
    "solution.primal_objective": "objective",
    "solution.solver_time": "solver_time",
    "solution.milp_statistics.solution_bound": "bound",
    "solution.milp_statistics.mip_gap": "gap",
    "solution_cost": "objective",
}


class StreamingSummary:
    """ijson event sink that keeps only the fields :class:`ResultSummary` needs (for results too
    large to load: a large NVCF result, a stored file read back)."""

    def __init__(self) -> None:
        self.summary = ResultSummary()
        self._answer: SolverAnswer | None = None
        self._prefix = ""
        self._lp_gap: float | None = None

    def send(self, event: tuple[str, str, Any]) -> None:
        """Take one ijson ``(prefix, event, value)``."""
        prefix, kind, value = event
        s = self.summary
        if prefix == "response" and kind == "start_map":
            s.has_response = True
        elif prefix == "response" and kind == "map_key" and value == "solver_infeasible_response":
            s.infeasible = True
        elif prefix == "response.total_solve_time" and kind == "number":
            s.total_solve_time = _number(value)
        elif prefix in _ANSWER_PREFIXES and kind == "start_map" and self._answer is None:
            self._answer = SolverAnswer(routing=prefix.endswith("infeasible_response"))
            self._prefix, self._lp_gap = prefix, None
        elif self._answer is not None and prefix.startswith(self._prefix):
            self._answer_event(prefix[len(self._prefix) :].lstrip("."), kind, value)
        elif prefix == "notes.item" and kind == "string" and len(s.notes) < MAX_NOTES:
            s.notes.append(value[:MAX_NOTE_CHARS])
        elif prefix == "warnings.item" and kind == "string" and len(s.warnings) < MAX_NOTES:
            s.warnings.append(value[:MAX_NOTE_CHARS])
        elif prefix == "error" and kind == "string":
            s.error = value[:MAX_NOTE_CHARS]

    def _answer_event(self, rest: str, kind: str, value: Any) -> None:
        answer = self._answer
        assert answer is not None
        if rest == "" and kind == "map_key" and value in _SOLUTION_KEYS:
            answer.has_solution = True
            answer.routing = answer.routing or value in _ROUTING_KEYS
        elif rest == "" and kind == "end_map":
            if answer.gap is None:
                answer.gap = self._lp_gap
            self.summary.answers.append(answer)
            self._answer = None
        elif rest == "status" and kind in ("number", "string"):
            answer.status = int(value) if kind == "number" and float(value).is_integer() else value
        elif rest == "solution.problem_category" and kind in ("number", "string"):
            answer.category = _category(int(value) if kind == "number" else value)
        elif rest == "solution.lp_statistics.gap" and kind == "number":
            self._lp_gap = _number(value)
        elif rest in _SOLUTION_FIELDS and kind == "number":
            setattr(answer, _SOLUTION_FIELDS[rest], _number(value))
