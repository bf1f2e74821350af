"""The emulator's cuOpt LP/MILP solver, checked against independent solves.

Random LPs are compared with a second HiGHS model built independently (dense, column-wise, from the
raw JSON) and checked for primal feasibility; small integer programs are compared with brute force.
"""

from __future__ import annotations

import itertools
import json
import math

import highspy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimization_emulator import cuopt
from optimization_emulator.cuopt import generate
from optimization_emulator.testing.cuopt import TINY_LP

INF = {"inf": math.inf, "ninf": -math.inf}


def _answer(problem) -> dict:
    body = cuopt.solve(problem)
    json.dumps(body, allow_nan=False)  # JSON without NaN/Infinity, always
    return body["response"]["solver_response"]


def _dense(problem: dict) -> tuple[np.ndarray, ...]:
    """(A, row lower, row upper, col lower, col upper, c) from the raw JSON, without the emulator."""
    csr = problem["csr_constraint_matrix"]
    c = np.array(problem["objective_data"]["coefficients"], dtype=float)
    m = len(csr["offsets"]) - 1
    a = np.zeros((m, len(c)))
    for row in range(m):
        for k in range(csr["offsets"][row], csr["offsets"][row + 1]):
            a[row, csr["indices"][k]] += csr["values"][k]
    bounds = problem["constraint_bounds"]
    if "types" in bounds:
        rhs = np.array(bounds["bounds"], dtype=float)
        lower = np.array([-math.inf if t == "L" else b for t, b in zip(bounds["types"], rhs)])
        upper = np.array([math.inf if t == "G" else b for t, b in zip(bounds["types"], rhs)])
    else:
        lower = np.array([INF.get(v, v) for v in bounds["lower_bounds"]], dtype=float)
        upper = np.array([INF.get(v, v) for v in bounds["upper_bounds"]], dtype=float)
    var = problem.get("variable_bounds", {})
    col_lower = np.array([INF.get(v, v) for v in var.get("lower_bounds", [0.0] * len(c))], dtype=float)
    col_upper = np.array([INF.get(v, v) for v in var.get("upper_bounds", ["inf"] * len(c))], dtype=float)
    return a, lower, upper, col_lower, col_upper, c


def _reference(problem: dict) -> float:
    """The optimal objective from a HiGHS model built column by column from the dense matrix."""
    a, lower, upper, col_lower, col_upper, c = _dense(problem)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    h.addRows(len(lower), np.clip(lower, -inf, inf), np.clip(upper, -inf, inf), 0, [], [], [])
    for j in range(len(c)):
        rows = np.nonzero(a[:, j])[0]
        h.addCol(float(c[j]), max(col_lower[j], -inf), min(col_upper[j], inf), len(rows), rows, a[rows, j])
    if problem.get("variable_types"):
        for j, kind in enumerate(problem["variable_types"]):
            if kind == "I":
                h.changeColIntegrality(j, highspy.HighsVarType.kInteger)
    if problem.get("maximize"):
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value


def _assert_feasible(problem: dict, x: list[float], tol: float = 1e-6) -> None:
    a, lower, upper, col_lower, col_upper, _ = _dense(problem)
    activity = a @ np.array(x)
    assert np.all(activity >= lower - tol) and np.all(activity <= upper + tol)
    assert np.all(np.array(x) >= col_lower - tol) and np.all(np.array(x) <= col_upper + tol)


def test_tiny_lp_of_the_docs() -> None:
    answer = _answer(TINY_LP)
    solution = answer["solution"]
    assert answer["status"] == "Optimal" and solution["problem_category"] == "LP"
    assert solution["primal_solution"] == pytest.approx([1.8, 0.0], abs=1e-12)
    assert solution["primal_objective"] == pytest.approx(-0.36, abs=1e-12)
    assert solution["dual_objective"] == pytest.approx(-0.36, abs=1e-9)
    assert len(solution["dual_solution"]) == 2 and len(solution["reduced_cost"]) == 2
    assert set(solution["lp_statistics"]) == {"primal_residual", "dual_residual", "gap", "nb_iterations"}
    assert solution["milp_statistics"] == {} and solution["solved_by_pdlp"] is False


def test_bounds_and_types_mean_the_same_as_lower_and_upper() -> None:
    problem = {**TINY_LP, "constraint_bounds": {"bounds": [5.4, 4.9], "types": ["L", "L"]}}
    assert _answer(problem)["solution"]["primal_solution"] == pytest.approx([1.8, 0.0])
    problem["constraint_bounds"] = {"bounds": [5.4, 4.9], "types": ["G", "E"]}
    solution = _answer(problem)["solution"]
    _assert_feasible(problem, solution["primal_solution"])
    assert solution["primal_objective"] == pytest.approx(_reference(problem))


def test_maximize_scaling_offset_and_names() -> None:
    problem = {
        **TINY_LP,
        "maximize": True,
        "objective_data": {"coefficients": [0.2, 0.1], "scalability_factor": 2.0, "offset": 1.0},
        "variable_names": ["x", "y"],
    }
    solution = _answer(problem)["solution"]
    assert solution["vars"] == pytest.approx({"x": 1.8, "y": 0.0})
    assert solution["primal_objective"] == pytest.approx(2.0 * (0.2 * 1.8 + 1.0))


def test_infeasible_and_unbounded() -> None:
    infeasible = {
        **TINY_LP,
        "constraint_bounds": {"upper_bounds": [5.4, 4.9], "lower_bounds": [6.0, "ninf"]},
        "variable_bounds": {"upper_bounds": [1.0, 1.0], "lower_bounds": [0.0, 0.0]},
    }
    assert _answer(infeasible)["status"] == "PrimalInfeasible"
    unbounded = {
        **TINY_LP,
        "constraint_bounds": {"upper_bounds": ["inf", "inf"], "lower_bounds": [0.0, 0.0]},
        "variable_bounds": {"upper_bounds": ["inf", "inf"], "lower_bounds": [0.0, 0.0]},
    }
    assert _answer(unbounded)["status"] == "DualInfeasible"
    infeasible_ip = {**infeasible, "variable_types": ["I", "C"]}
    answer = _answer(infeasible_ip)
    assert answer["status"] == "Infeasible" and answer["solution"]["primal_solution"] == []


def _random_lp(seed: int) -> dict:
    """A feasible, bounded LP with mixed row types, free and boxed variables, built around x0."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 25)), int(rng.integers(1, 20))
    a = np.round(rng.normal(size=(m, n)) * (rng.random((m, n)) < 0.4), 3)
    x0 = rng.uniform(-5, 5, n)
    activity = a @ x0
    types = rng.choice(["E", "L", "G"], m)
    rhs = np.round(activity + np.where(types == "L", 1.0, np.where(types == "G", -1.0, 0.0)), 6)
    rhs = np.where(types == "E", activity, rhs)
    offsets = [0]
    indices: list[int] = []
    values: list[float] = []
    for row in a:
        cols = np.nonzero(row)[0]
        indices += cols.tolist()
        values += row[cols].tolist()
        offsets.append(len(indices))
    costs = np.round(rng.normal(size=n), 3)
    maximize = bool(rng.random() < 0.5)
    # No lower bound only where the objective pushes the variable up, so the LP stays bounded.
    pushed_up = costs > 0 if maximize else costs < 0
    lower = [("ninf" if up and rng.random() < 0.5 else v) for v, up in zip(np.floor(x0) - 10, pushed_up)]
    return {
        "csr_constraint_matrix": {"offsets": offsets, "indices": indices, "values": values},
        "constraint_bounds": {"bounds": rhs.tolist(), "types": types.tolist()},
        "objective_data": {"coefficients": costs.tolist()},
        "variable_bounds": {"lower_bounds": lower, "upper_bounds": (np.ceil(x0) + 10).tolist()},
        "maximize": maximize,
    }


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_lps_match_an_independent_solve(seed: int) -> None:
    problem = _random_lp(seed)
    answer = _answer(problem)
    assert answer["status"] == "Optimal"
    solution = answer["solution"]
    _assert_feasible(problem, solution["primal_solution"])
    assert solution["primal_objective"] == pytest.approx(_reference(problem), rel=1e-6, abs=1e-6)
    assert solution["dual_objective"] == pytest.approx(solution["primal_objective"], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_packing_lps_and_milps_from_the_generator(seed: int) -> None:
    lp = generate.lp_problem(40, 25, seed)
    assert _answer(lp)["solution"]["primal_objective"] == pytest.approx(_reference(lp), rel=1e-7)
    milp = generate.lp_problem(15, 8, seed, integer=True)
    answer = _answer(milp)
    assert answer["status"] == "Optimal" and answer["solution"]["problem_category"] == "IP"
    _assert_feasible(milp, answer["solution"]["primal_solution"])
    assert answer["solution"]["primal_objective"] == pytest.approx(_reference(milp), rel=1e-7)


@pytest.mark.parametrize("seed", range(8))
def test_small_integer_programs_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = 5, 3
    a = rng.integers(0, 6, size=(m, n))
    b = rng.integers(5, 15, size=m)
    c = rng.integers(1, 10, size=n)
    kinds = ["I", "I", "I", "C", "I"] if seed % 2 else ["I"] * n
    problem = {
        "csr_constraint_matrix": {
            "offsets": [n * i for i in range(m + 1)],
            "indices": list(range(n)) * m,
            "values": a.ravel().astype(float).tolist(),
        },
        "constraint_bounds": {"upper_bounds": b.astype(float).tolist(), "lower_bounds": ["ninf"] * m},
        "objective_data": {"coefficients": c.astype(float).tolist()},
        "variable_bounds": {"lower_bounds": [0.0] * n, "upper_bounds": [3.0] * n},
        "variable_types": kinds,
        "maximize": True,
    }
    answer = _answer(problem)
    solution = answer["solution"]
    assert answer["status"] == "Optimal"
    assert solution["problem_category"] == ("MIP" if "C" in kinds else "IP")
    assert solution["dual_solution"] is None and solution["reduced_cost"] is None
    stats = solution["milp_statistics"]
    assert stats["max_int_violation"] <= 1e-6 and stats["mip_gap"] <= 1e-4 and "num_nodes" in stats
    x = np.array(solution["primal_solution"])
    assert np.allclose(
        x[[i for i, k in enumerate(kinds) if k == "I"]],
        np.round(x[[i for i, k in enumerate(kinds) if k == "I"]]),
    )
    _assert_feasible(problem, x.tolist())
    if "C" not in kinds:
        best = max(
            c @ np.array(p) for p in itertools.product(range(4), repeat=n) if np.all(a @ np.array(p) <= b)
        )
        assert solution["primal_objective"] == pytest.approx(best)
    else:
        assert solution["primal_objective"] == pytest.approx(_reference(problem), rel=1e-7)


def test_batch_of_lps_gives_a_list() -> None:
    body = cuopt.solve([TINY_LP, {**TINY_LP, "maximize": True}])
    answers = body["response"]["solver_response"]
    assert isinstance(answers, list) and len(answers) == 2
    assert answers[0]["solution"]["primal_objective"] == pytest.approx(-0.36)
    assert len(body["notes"]) == 2
