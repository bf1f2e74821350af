"""Seeded cuOpt problems for tests, the example DAG and benchmarks.

Every problem is feasible by construction and solves in seconds on the emulator, at any size
asked for; sizes decide which NVCF path a client takes:

* ``routing_problem(200, 10)`` is about 560 KB of JSON: over the 250,000-byte inline limit, so
  clients upload it as an asset; it solves in about 2 s.
* ``lp_problem(170_000, 10_000, names=True)`` (6 MB of JSON) gives a result of about 5.6 MB: over
  NVCF's 5 MiB inline limit, so it comes back as a zip (``responseReference``); HiGHS solves it in
  about 1.5 s.

``market_split_problem()`` is the exception, on purpose: a small MILP that branch and bound cannot
finish (Cornuéjols and Dawande's market split), so it runs until its ``time_limit`` and keeps finding
better incumbents on the way — for tests of aborts, polling timeouts, incumbents and solver logs.

Command line (JSON on stdout)::

    python -m optimization_emulator.cuopt.generate routing --tasks 200 --vehicles 10 --seed 1
    python -m optimization_emulator.cuopt.generate lp --vars 170000 --cons 10000 --names
    python -m optimization_emulator.cuopt.generate milp --vars 30 --cons 20
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np


def routing_problem(
    n_tasks: int,
    n_vehicles: int,
    seed: int = 0,
    *,
    time_windows: bool = True,
    capacities: bool = True,
    time_limit: float = 5.0,
) -> dict[str, Any]:
    """Customers in a 100 x 100 square served from a depot at location 0.

    Costs are Euclidean distances (2 decimals) and travel times the same distances at unit speed.
    Capacities leave 30 % slack over total demand; time windows are at least 120 wide and always
    reachable directly from the depot, and the horizon lets a vehicle serve any one task alone.
    """
    rng = np.random.default_rng(seed)
    points = np.vstack([[50.0, 50.0], rng.uniform(0, 100, size=(n_tasks, 2))])
    distances = np.round(np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1)), 2)
    problem: dict[str, Any] = {
        "cost_matrix_data": {"data": {"0": distances.tolist()}},
        "travel_time_matrix_data": {"data": {"0": distances.tolist()}},
        "task_data": {
            "task_locations": list(range(1, n_tasks + 1)),
            "service_times": [float(s) for s in rng.integers(1, 6, n_tasks)],
        },
        "fleet_data": {"vehicle_locations": [[0, 0]] * n_vehicles},
        "solver_config": {"time_limit": time_limit},
    }
    if capacities:
        demand = rng.integers(1, 10, n_tasks)
        per_vehicle = max(int(np.ceil(demand.sum() * 1.3 / n_vehicles)), int(demand.max()))
        problem["task_data"]["demand"] = [demand.tolist()]
        problem["fleet_data"]["capacities"] = [[per_vehicle] * n_vehicles]
    if time_windows:
        reach = distances[0, 1:]
        early = np.round(rng.uniform(0, 600, n_tasks))
        early = np.maximum(early, np.ceil(reach))
        late = early + np.round(rng.uniform(120, 400, n_tasks))
        horizon = float(np.ceil((late + 5 + reach).max()))
        problem["task_data"]["task_time_windows"] = np.stack([early, late], axis=1).tolist()
        problem["fleet_data"]["vehicle_time_windows"] = [[0, horizon]] * n_vehicles
    return problem


def lp_problem(
    n_vars: int,
    n_cons: int,
    seed: int = 0,
    *,
    integer: bool = False,
    names: bool = False,
    nnz_per_row: int = 6,
    time_limit: float | None = None,
) -> dict[str, Any]:
    """A packing problem: maximize ``c·x`` s.t. ``A x <= b``, ``0 <= x <= u`` (``A, c > 0``).

    ``x = 0`` is feasible and the box keeps it bounded, so every instance has an optimum.
    With ``integer``, every variable is integer (an IP); MILP instances should stay small.
    """
    rng = np.random.default_rng(seed)
    k = max(1, min(nnz_per_row, n_vars))
    columns = np.vstack([np.sort(rng.choice(n_vars, size=k, replace=False)) for _ in range(n_cons)])
    values = np.round(rng.uniform(1, 10, size=(n_cons, k)), 3)
    upper = (
        np.round(rng.uniform(1, 10, n_vars), 3) if not integer else rng.integers(1, 10, n_vars).astype(float)
    )
    activity_at_upper = (values * upper[columns]).sum(axis=1)
    rhs = np.round(activity_at_upper * rng.uniform(0.2, 0.6, n_cons), 3)
    problem: dict[str, Any] = {
        "csr_constraint_matrix": {
            "offsets": list(range(0, n_cons * k + 1, k)),
            "indices": columns.ravel().tolist(),
            "values": values.ravel().tolist(),
        },
        "constraint_bounds": {"upper_bounds": rhs.tolist(), "lower_bounds": ["ninf"] * n_cons},
        "objective_data": {
            "coefficients": np.round(rng.uniform(1, 20, n_vars), 3).tolist(),
            "scalability_factor": 1.0,
            "offset": 0.0,
        },
        "variable_bounds": {"upper_bounds": upper.tolist(), "lower_bounds": [0.0] * n_vars},
        "maximize": True,
    }
    if integer:
        problem["variable_types"] = ["I"] * n_vars
    if names:
        problem["variable_names"] = [f"x{i}" for i in range(n_vars)]
    if time_limit is not None:
        problem["solver_config"] = {"time_limit": time_limit}
    return problem


def market_split_problem(
    m: int = 4, n: int = 36, seed: int = 0, *, time_limit: float = 60.0
) -> dict[str, Any]:
    """Split ``n`` products between two markets so that each of ``m`` resources is shared half and
    half: ``A x + s⁺ - s⁻ = d`` with binary ``x``, minimize ``Σ s⁺ + s⁻``. With ``m = 4, n = 36``
    HiGHS proves nothing within minutes (the LP bound is 0), but finds incumbents within a second."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, size=(m, n))
    demand = (a.sum(axis=1) // 2).astype(float)
    width = n + 2
    indices = [[*range(n), n + 2 * i, n + 2 * i + 1] for i in range(m)]
    values = [[*map(float, a[i]), 1.0, -1.0] for i in range(m)]
    return {
        "csr_constraint_matrix": {
            "offsets": list(range(0, m * width + 1, width)),
            "indices": [j for row in indices for j in row],
            "values": [v for row in values for v in row],
        },
        "constraint_bounds": {"upper_bounds": demand.tolist(), "lower_bounds": demand.tolist()},
        "objective_data": {
            "coefficients": [0.0] * n + [1.0] * (2 * m),
            "scalability_factor": 1.0,
            "offset": 0.0,
        },
        "variable_bounds": {
            "upper_bounds": [1.0] * n + ["inf"] * (2 * m),
            "lower_bounds": [0.0] * (n + 2 * m),
        },
        "variable_types": ["I"] * n + ["C"] * (2 * m),
        "maximize": False,
        "solver_config": {"time_limit": time_limit},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optimization_emulator.cuopt.generate", description=__doc__
    )
    parser.add_argument("kind", choices=("routing", "lp", "milp"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", type=int, default=20, help="routing: tasks (default 20)")
    parser.add_argument("--vehicles", type=int, default=4, help="routing: vehicles (default 4)")
    parser.add_argument("--no-time-windows", action="store_true", help="routing: no time windows")
    parser.add_argument("--vars", type=int, default=50, help="lp/milp: variables (default 50)")
    parser.add_argument("--cons", type=int, default=30, help="lp/milp: constraints (default 30)")
    parser.add_argument("--names", action="store_true", help="lp/milp: add variable_names (bigger results)")
    args = parser.parse_args(argv)
    if args.kind == "routing":
        problem = routing_problem(args.tasks, args.vehicles, args.seed, time_windows=not args.no_time_windows)
    else:
        problem = lp_problem(args.vars, args.cons, args.seed, integer=args.kind == "milp", names=args.names)
    json.dump(problem, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
