"""LP and MILP in cuOpt's ``LPData`` format, solved on the CPU with HiGHS.

cuOpt solves these on the GPU (PDLP, dual simplex, barrier, branch and bound); the emulator hands
the same model to HiGHS and reports the answer in the shape of cuOpt 25.x
(``cuopt_server.utils.linear_programming.solver.create_solution``): status names such as
``Optimal``/``PrimalInfeasible`` for LP and ``Optimal``/``FeasibleFound``/``Infeasible`` for MILP,
``problem_category`` ``LP``/``MIP``/``IP``, primal and dual values, residuals and MILP statistics.

Conventions the emulator chooses where cuOpt's are not documented (see docs/emulator.md): missing
variable bounds default to ``[0, +inf)``; the objective is ``scalability_factor * (c·x + offset)``;
duals and reduced costs use HiGHS' sign convention; ``time_limit`` is capped at one hour (NVCF's
request limit).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import highspy
import numpy as np

from optimization_emulator.cuopt.schema import LP_MODELS, CuOptError, validate

#: Longest solve; NVCF ends any request after an hour.
MAX_TIME_LIMIT = 3600.0
_INF = highspy.kHighsInf
_MS = highspy.HighsModelStatus
_LP_STATUS = {
    _MS.kOptimal: "Optimal",
    _MS.kInfeasible: "PrimalInfeasible",
    _MS.kUnbounded: "DualInfeasible",
    _MS.kUnboundedOrInfeasible: "PrimalInfeasible",
    _MS.kTimeLimit: "TimeLimit",
    _MS.kIterationLimit: "IterationLimit",
}
_MIP_STATUS = {
    _MS.kOptimal: "Optimal",
    _MS.kInfeasible: "Infeasible",
    _MS.kUnbounded: "Unbounded",
    _MS.kUnboundedOrInfeasible: "Infeasible",
    _MS.kTimeLimit: "TimeLimit",
    _MS.kIterationLimit: "TimeLimit",
}
#: cuOpt tolerance names (current and pre-25.05) -> HiGHS options.
_TOLERANCE_OPTIONS = {
    "absolute_primal_tolerance": "primal_feasibility_tolerance",
    "absolute_primal": "primal_feasibility_tolerance",
    "absolute_dual_tolerance": "dual_feasibility_tolerance",
    "absolute_dual": "dual_feasibility_tolerance",
    "mip_integrality_tolerance": "mip_feasibility_tolerance",
    "integrality_tolerance": "mip_feasibility_tolerance",
    "mip_absolute_gap": "mip_abs_gap",
    "absolute_mip_gap": "mip_abs_gap",
    "mip_relative_gap": "mip_rel_gap",
    "relative_mip_gap": "mip_rel_gap",
}
#: cuOpt ``method``: 0 concurrent, 1 PDLP, 2 dual simplex, 3 barrier (HiGHS picks for 0 and 1).
_METHODS = {2: "simplex", 3: "ipm"}


@dataclasses.dataclass(frozen=True)
class SolveObserver:
    """What the self-hosted server's ``solver_logs`` and ``incumbent_solutions`` ask of a solve.

    ``log_path``: HiGHS writes its log there (the real server's solver log is cuOpt's; HiGHS's own
    log is what the emulator has). ``on_incumbent(solution, cost, bound)`` is called for every
    improving MIP solution HiGHS finds (``bound``: its dual bound then, None when infinite).
    """

    log_path: str | None = None
    on_incumbent: Callable[[list[float], float, float | None], None] | None = None


@dataclasses.dataclass
class LinearProgram:
    """One validated LPData problem as arrays."""

    costs: np.ndarray
    offset: float
    maximize: bool
    offsets: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray | None  # bool per variable, None for a pure LP
    names: list[str] | None
    options: dict[str, Any]
    time_limit: float

    @property
    def category(self) -> str:
        if self.integer is None or not self.integer.any():
            return "LP"
        return "IP" if self.integer.all() else "MIP"


def parse(data: Any) -> tuple[LinearProgram, list[str]]:
    """Validates one LPData object; 422 for schema problems, 400 for inconsistent values."""
    model, warnings = validate(data, LP_MODELS)
    csr = model["csr_constraint_matrix"]
    objective = model["objective_data"]
    costs = objective["coefficients"]
    n = len(costs)
    offsets, indices, values = csr["offsets"], csr["indices"], csr["values"]
    m = len(offsets) - 1
    if m < 0 or offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != len(indices):
        raise CuOptError(
            "csr_constraint_matrix.offsets must start at 0, never decrease and end at len(indices)"
        )
    if len(indices) != len(values):
        raise CuOptError("csr_constraint_matrix: indices and values must have the same length")
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise CuOptError(
            f"csr_constraint_matrix.indices must lie in [0, {n}) (one per objective coefficient)"
        )
    row_lower, row_upper = _constraint_bounds(model["constraint_bounds"], m)
    bounds = model.get("variable_bounds", {})
    col_lower = _sized(bounds.get("lower_bounds"), n, 0.0, "variable_bounds.lower_bounds")
    col_upper = _sized(bounds.get("upper_bounds"), n, math.inf, "variable_bounds.upper_bounds")
    integer = None
    if "variable_types" in model:
        types = [t.upper() for t in model["variable_types"]]
        if len(types) != n or set(types) - {"I", "C"}:
            raise CuOptError(f"variable_types must hold {n} entries, each 'I' or 'C'")
        integer = np.array([t == "I" for t in types], dtype=bool)
    names = model.get("variable_names")
    if names is not None and len(names) != n:
        raise CuOptError(f"variable_names must hold {n} names, one per variable")
    config = model.get("solver_config", {})
    factor = objective.get("scalability_factor", 1.0)
    return (
        LinearProgram(
            costs=costs * factor,
            offset=objective.get("offset", 0.0) * factor,
            maximize=bool(model.get("maximize", False)),
            offsets=offsets,
            indices=indices,
            values=values,
            row_lower=row_lower,
            row_upper=row_upper,
            col_lower=col_lower,
            col_upper=col_upper,
            integer=integer,
            names=names,
            options=_options(config),
            time_limit=min(float(config.get("time_limit", MAX_TIME_LIMIT)), MAX_TIME_LIMIT),
        ),
        warnings,
    )


def _sized(values: np.ndarray | None, n: int, default: float, what: str) -> np.ndarray:
    if values is None:
        return np.full(n, default)
    if len(values) != n:
        raise CuOptError(f"{what} must hold {n} values, got {len(values)}")
    return values


def _constraint_bounds(bounds: dict[str, Any], m: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower/upper bounds per row, from ``lower_bounds``/``upper_bounds`` or ``bounds`` + ``types``."""
    if "bounds" in bounds or "types" in bounds:
        rhs, types = bounds.get("bounds"), bounds.get("types")
        if rhs is None or types is None or len(rhs) != m or len(types) != m:
            raise CuOptError(f"constraint_bounds.bounds and .types must both hold {m} entries")
        kinds = np.array([t.upper() for t in types])
        if not set(kinds) <= {"E", "L", "G"}:
            raise CuOptError("constraint_bounds.types entries must be 'E', 'L' or 'G'")
        lower = np.where(kinds == "L", -math.inf, rhs)
        upper = np.where(kinds == "G", math.inf, rhs)
        return lower, upper
    if "lower_bounds" not in bounds and "upper_bounds" not in bounds:
        raise CuOptError("constraint_bounds needs lower_bounds/upper_bounds, or bounds and types")
    lower = _sized(bounds.get("lower_bounds"), m, -math.inf, "constraint_bounds.lower_bounds")
    upper = _sized(bounds.get("upper_bounds"), m, math.inf, "constraint_bounds.upper_bounds")
    return lower, upper


def _options(config: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in (config.get("tolerances") or {}).items():
        if name in _TOLERANCE_OPTIONS:
            options[_TOLERANCE_OPTIONS[name]] = float(value)
    if config.get("method") in _METHODS:
        options["solver"] = _METHODS[config["method"]]
    if config.get("presolve") is not None:
        options["presolve"] = "on" if config["presolve"] else "off"
    if config.get("iteration_limit") is not None:
        options["simplex_iteration_limit"] = int(config["iteration_limit"])
    return options


def _run(
    lp: LinearProgram, presolve: str | None = None, observer: SolveObserver | None = None
) -> highspy.Highs:
    n, m = len(lp.costs), len(lp.offsets) - 1
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = n, m
    model.sense_ = highspy.ObjSense.kMaximize if lp.maximize else highspy.ObjSense.kMinimize
    model.offset_ = lp.offset
    model.col_cost_ = lp.costs
    model.col_lower_ = np.clip(lp.col_lower, -_INF, _INF)
    model.col_upper_ = np.clip(lp.col_upper, -_INF, _INF)
    model.row_lower_ = np.clip(lp.row_lower, -_INF, _INF)
    model.row_upper_ = np.clip(lp.row_upper, -_INF, _INF)
    model.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    model.a_matrix_.num_col_, model.a_matrix_.num_row_ = n, m
    model.a_matrix_.start_ = lp.offsets.astype(np.int32)
    model.a_matrix_.index_ = lp.indices.astype(np.int32)
    model.a_matrix_.value_ = lp.values
    if lp.integer is not None and lp.integer.any():
        model.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous for flag in lp.integer
        ]
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    if observer is not None:
        _observe(highs, observer)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("time_limit", lp.time_limit)
    for name, value in {**lp.options, **({"presolve": presolve} if presolve else {})}.items():
        highs.setOptionValue(name, value)
    status = highs.passModel(model)
    if status == highspy.HighsStatus.kError:
        raise CuOptError("HiGHS rejected the model (check bounds and matrix values)", 422)
    highs.run()
    return highs


def _observe(highs: highspy.Highs, observer: SolveObserver) -> None:
    if observer.log_path:
        highs.setOptionValue("output_flag", True)
        highs.setOptionValue("log_to_console", False)
        highs.setOptionValue("log_file", observer.log_path)
    report = observer.on_incumbent
    if report is not None:

        def improving(event: Any) -> None:
            data = event.data_out
            report(
                [float(v) for v in data.mip_solution],
                float(data.objective_function_value),
                _finite(data.mip_dual_bound),
            )

        highs.cbMipImprovingSolution.subscribe(improving)


def solve(lp: LinearProgram, observer: SolveObserver | None = None) -> tuple[dict[str, Any], str]:
    """Solves ``lp``; returns cuOpt's ``solver_response`` object and the termination note."""
    started = time.perf_counter()
    highs = _run(lp, observer=observer)
    if highs.getModelStatus() == _MS.kUnboundedOrInfeasible:  # presolve could not tell which
        highs = _run(lp, presolve="off", observer=observer)
    model_status = highs.getModelStatus()
    mip = lp.category != "LP"
    info = highs.getInfo()
    has_primal = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    solution = highs.getSolution()
    x = np.asarray(solution.col_value) + 0.0 if has_primal else np.zeros(0)  # + 0.0: no -0.0 in JSON
    status = (_MIP_STATUS if mip else _LP_STATUS).get(model_status, "NoTermination")
    if mip and status == "TimeLimit" and has_primal:
        status = "FeasibleFound"
    elapsed = time.perf_counter() - started
    primal_objective = _finite(info.objective_function_value) if has_primal else None
    result: dict[str, Any] = {
        "problem_category": lp.category,
        "primal_solution": x.tolist(),
        "primal_objective": primal_objective,
        "solver_time": elapsed,
        "solved_by_pdlp": False,
        "vars": dict(zip(lp.names, x.tolist())) if lp.names and has_primal else {},
    }
    violations = _violations(lp, x, np.asarray(solution.row_value)) if has_primal else None
    if mip:
        result.update(
            dual_solution=None,
            dual_objective=None,
            reduced_cost=None,
            lp_statistics={},
            milp_statistics={
                "mip_gap": _finite(info.mip_gap) if has_primal else None,
                "solution_bound": _finite(info.mip_dual_bound),
                "presolve_time": 0.0,
                "max_constraint_violation": violations[0] if violations else None,
                "max_int_violation": violations[2] if violations else None,
                "max_variable_bound_violation": violations[1] if violations else None,
                "num_nodes": int(info.mip_node_count),
                "num_simplex_iterations": int(info.simplex_iteration_count),
            },
        )
    else:
        has_dual = info.dual_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        y = np.asarray(solution.row_dual) + 0.0 if has_dual else np.zeros(0)
        d = np.asarray(solution.col_dual) + 0.0 if has_dual else np.zeros(0)
        dual_objective = (
            _finite(_dual_objective(lp, x, np.asarray(solution.row_value), y, d)) if has_dual else None
        )
        gap = (
            abs(primal_objective - dual_objective) if None not in (primal_objective, dual_objective) else None
        )
        result.update(
            dual_solution=y.tolist(),
            dual_objective=dual_objective,
            reduced_cost=d.tolist(),
            solved_by="Barrier" if info.ipm_iteration_count else "DualSimplex",
            lp_statistics={
                "primal_residual": violations[0] if violations else None,
                "dual_residual": _finite(info.max_dual_infeasibility) if has_dual else None,
                "gap": gap,
                "nb_iterations": int(info.simplex_iteration_count + info.ipm_iteration_count),
            },
            milp_statistics={},
        )
    return {"status": status, "solution": result}, highs.modelStatusToString(model_status)


def _finite(value: float) -> float | None:
    """JSON has no infinities: HiGHS' +-inf (an unknown bound, say) becomes null."""
    value = float(value)
    return value if math.isfinite(value) else None


def _violations(lp: LinearProgram, x: np.ndarray, activity: np.ndarray) -> tuple[float, float, float]:
    """Largest constraint, variable-bound and integrality violations of ``x`` (0 when none)."""
    rows = np.maximum(np.maximum(lp.row_lower - activity, activity - lp.row_upper), 0.0)
    cols = np.maximum(np.maximum(lp.col_lower - x, x - lp.col_upper), 0.0)
    ints = np.abs(x - np.round(x))[lp.integer] if lp.integer is not None else np.zeros(0)
    return (
        float(rows.max(initial=0.0)),
        float(cols.max(initial=0.0)),
        float(ints.max(initial=0.0)),
    )


def _dual_objective(
    lp: LinearProgram, x: np.ndarray, activity: np.ndarray, y: np.ndarray, d: np.ndarray
) -> float:
    """``offset + Σ y·(active row bound) + Σ d·(active column bound)``: equals the primal
    objective at an optimum, and shows the gap otherwise."""

    def active(value: np.ndarray, lower: np.ndarray, upper: np.ndarray, dual: np.ndarray) -> float:
        nearer_lower = np.abs(value - lower) <= np.abs(value - upper)
        bound = np.where(nearer_lower, lower, upper)
        used = (dual != 0) & np.isfinite(bound)
        return float(np.dot(dual[used], bound[used]))

    return (
        lp.offset + active(activity, lp.row_lower, lp.row_upper, y) + active(x, lp.col_lower, lp.col_upper, d)
    )


def solve_batch(data: Any, observer: SolveObserver | None = None) -> tuple[Any, list[str], list[str]]:
    """One LPData object or a list of them (batch): ``solver_response`` (list for batch), notes, warnings."""
    problems = data if isinstance(data, list) else [data]
    answers, notes, warnings = [], [], []
    for index, item in enumerate(problems):
        try:
            lp, item_warnings = parse(item)
        except CuOptError as exc:
            if isinstance(data, list):
                exc.message = f"batch problem {index}: {exc.message}"
            raise
        answer, note = solve(lp, observer)
        answers.append(answer)
        notes.append(note)
        warnings.extend(item_warnings)
    return (answers if isinstance(data, list) else answers[0]), notes, warnings
