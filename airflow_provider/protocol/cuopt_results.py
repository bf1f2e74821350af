"""What a cuOpt result says, read the same way from a parsed dict or from a streamed large result.

Pure code: the sync hook, the trigger and the sensor all decide success/infeasibility here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Solver statuses that mean "there is a usable solution" (LP/MILP names of cuOpt 25.x).
GOOD_STATUS_NAMES = frozenset({"Optimal", "FeasibleFound", "PrimalFeasible", "TimeLimit"})


@dataclass
class ResultSummary:
    """What the provider needs to know about a cuOpt result, collected without keeping the result.

    Built from a parsed dict (:func:`summarize_result`) or from a streaming parse of a large result
    file (``hooks/cuopt_results.py``), so both paths share :func:`solver_outcome`.
    """

    has_response: bool = False
    infeasible: bool = False
    #: (status, has_solution) per solver answer (several for batch LP).
    answers: list[tuple[Any, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def summarize_result(result: Any) -> ResultSummary:
    """The summary of a parsed result dict."""
    summary = ResultSummary()
    if not isinstance(result, Mapping):
        return summary
    if result.get("error"):
        summary.error = str(result["error"])
    summary.notes = [str(n) for n in (result.get("notes") or []) if n][:20]
    response = result.get("response")
    if not isinstance(response, Mapping):
        return summary
    summary.has_response = True
    summary.infeasible = "solver_infeasible_response" in response
    solver = response.get("solver_response")
    for answer in solver if isinstance(solver, list) else ([solver] if solver is not None else []):
        if isinstance(answer, Mapping):
            has_solution = any(key in answer for key in ("solution", "vehicle_data", "num_vehicles"))
            summary.answers.append((answer.get("status"), has_solution))
    return summary


def solver_outcome(summary: ResultSummary) -> tuple[bool, str]:
    """(ok, message). Routing: ``solver_response`` with status 0, or ``solver_infeasible_response``;
    LP/MILP: a status name (older containers: integers, 1 = optimal)."""
    notes = ("; notes: " + "; ".join(summary.notes))[:1000] if summary.notes else ""
    if summary.error and not summary.has_response:
        return False, f"cuOpt error: {summary.error}"
    if not summary.has_response:
        return False, "cuOpt answer has no 'response' object"
    if summary.infeasible:
        return False, "cuOpt found the problem infeasible" + notes
    if not summary.answers:
        return False, "cuOpt answer has no solver_response" + notes
    for status, has_solution in summary.answers:
        if isinstance(status, str):
            if status not in GOOD_STATUS_NAMES:
                return False, f"cuOpt solver status {status}" + notes
        elif isinstance(status, int) and not isinstance(status, bool):
            if not (status == 0 or (status == 1 and has_solution)):
                return False, f"cuOpt solver status {status}" + notes
        else:
            return False, f"cuOpt answer has an unreadable solver status {status!r}"
    return True, ""


class StreamingSummary:
    """ijson event sink that keeps only the fields :class:`ResultSummary` needs (for results too
    large to load: a large NVCF result, a stored file read back)."""

    def __init__(self) -> None:
        self.summary = ResultSummary()
        self._answer: list[Any] | None = None

    def send(self, event: tuple[str, str, Any]) -> None:
        """Take one ijson ``(prefix, event, value)``."""
        prefix, kind, value = event
        s = self.summary
        if prefix == "response" and kind == "start_map":
            s.has_response = True
        elif prefix == "response" and kind == "map_key" and value == "solver_infeasible_response":
            s.infeasible = True
        elif prefix in ("response.solver_response", "response.solver_response.item") and kind == "start_map":
            self._answer = [None, False]
        elif (
            self._answer is not None
            and kind == "map_key"
            and prefix
            in (
                "response.solver_response",
                "response.solver_response.item",
            )
            and value in ("solution", "vehicle_data", "num_vehicles")
        ):
            self._answer[1] = True
        elif (
            prefix in ("response.solver_response.status", "response.solver_response.item.status")
            and self._answer
        ):
            self._answer[0] = int(value) if kind == "number" and float(value).is_integer() else value
        elif prefix in ("response.solver_response", "response.solver_response.item") and kind == "end_map":
            if self._answer is not None:
                s.answers.append((self._answer[0], self._answer[1]))
            self._answer = None
        elif prefix == "notes.item" and kind == "string" and len(s.notes) < 20:
            s.notes.append(value)
        elif prefix == "error" and kind == "string":
            s.error = value
