"""One small door into HiGHS for the demo apps: pass a column-wise integer program, get values back.

Both demo apps are "maximize c·x subject to A·x <= b, integer bounded x"; building the model as
arrays (``HighsLp``) instead of one Python call per variable keeps 100k-variable models fast.
"""

from __future__ import annotations

import dataclasses

import highspy
import numpy as np

_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
}


@dataclasses.dataclass(frozen=True)
class ColumnwiseMaxProblem:
    """maximize ``profit·x`` s.t. ``matrix·x <= row_upper``, ``lower <= x <= upper``, x integer.

    ``matrix`` is compressed sparse column: column j's non-zeros are ``index/value[start[j]:start[j+1]]``.
    """

    profit: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    row_upper: np.ndarray
    start: np.ndarray
    index: np.ndarray
    value: np.ndarray


@dataclasses.dataclass(frozen=True)
class MilpResult:
    status: str  # optimal | time_limit | infeasible | unbounded | error
    values: np.ndarray | None  # rounded integer values when a feasible solution exists
    objective: float | None
    bound: float | None
    gap: float | None
    duration: float
    nodes: int


def solve_max(problem: ColumnwiseMaxProblem, *, time_limit: float, relative_gap: float) -> MilpResult:
    """Solves ``problem`` with HiGHS' branch and cut, quietly (the run log gets our own summary)."""
    n_cols, n_rows = len(problem.profit), len(problem.row_upper)
    if n_cols == 0:  # nothing to decide; HiGHS reports an empty model without a solution
        return MilpResult("optimal", np.zeros(0), 0.0, 0.0, 0.0, 0.0, 0)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, n_rows
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = problem.profit.astype(float)
    lp.col_lower_ = problem.lower.astype(float)
    lp.col_upper_ = problem.upper.astype(float)
    lp.row_lower_ = np.full(n_rows, -highspy.kHighsInf)
    lp.row_upper_ = problem.row_upper.astype(float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = problem.start.astype(np.int32)
    lp.a_matrix_.index_ = problem.index.astype(np.int32)
    lp.a_matrix_.value_ = problem.value.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_cols

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(time_limit))
    highs.setOptionValue("mip_rel_gap", float(relative_gap))
    highs.setOptionValue("threads", 1)
    highs.passModel(lp)
    highs.run()

    status = _STATUS.get(highs.getModelStatus(), "error")
    info = highs.getInfo()
    has_solution = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    values = np.rint(np.asarray(highs.getSolution().col_value)) if has_solution else None
    if status == "optimal" and values is None:
        status = "error"
    return MilpResult(
        status=status,
        values=values,
        objective=float(problem.profit @ values) if values is not None else None,
        bound=float(info.mip_dual_bound) if has_solution else None,
        gap=float(info.mip_gap) if has_solution else None,
        duration=float(highs.getRunTime()),
        nodes=int(info.mip_node_count),
    )
