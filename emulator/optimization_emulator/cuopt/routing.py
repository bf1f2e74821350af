"""Vehicle routing in cuOpt's ``OptimizedRoutingData`` format: the model and the answer.

cuOpt solves these with GPU metaheuristics; the emulator validates the same request, builds a
:class:`RoutingProblem` of plain lists (fast scalar access for the pure-Python search in
``routing_search.py``) and answers in cuOpt's shape (``solver_response`` with ``status`` 0,
``vehicle_data``, ``dropped_tasks``...; ``solver_infeasible_response`` with ``status`` 1 when
some task cannot be served).

Supported: cost and travel-time matrices per vehicle type, capacities in several dimensions,
task and vehicle time windows (waiting allowed), service times (per task or per vehicle type),
pickup-and-delivery pairs, prizes (tasks may be dropped), order/vehicle matching, fixed costs,
maximum cost/time per vehicle, ``drop_return_trips``, ``skip_first_trips``, ``min_vehicles``
(best effort). Not supported (a clear 422): waypoint graphs and vehicle breaks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from optimization_emulator.cuopt.schema import ROUTING_MODELS, CuOptError, validate

#: cuOpt's routing solver runs for ``time_limit`` seconds; the emulator stops earlier once its
#: local search converges, and never runs longer than this.
DEFAULT_TIME_LIMIT = 10.0
MAX_TIME_LIMIT = 3600.0
_UNSUPPORTED = {
    "cost_waypoint_graph_data": "waypoint graphs (send cost_matrix_data instead)",
    "travel_time_waypoint_graph_data": "waypoint graphs (send travel_time_matrix_data instead)",
}
_UNSUPPORTED_FLEET = (
    "vehicle_break_time_windows",
    "vehicle_break_durations",
    "vehicle_break_locations",
    "vehicle_breaks",
)


@dataclasses.dataclass
class RoutingProblem:
    """A validated routing problem; per-vehicle lists are indexed by vehicle, per-task by task."""

    task_locations: list[int]
    task_names: list[str]
    vehicle_names: list[str]
    cost: list[list[list[float]]]  # per vehicle: its type's cost matrix (shared between vehicles)
    travel: list[list[list[float]]]  # per vehicle: its type's travel-time matrix
    service: list[list[float]]  # per vehicle: service time of each task
    start: list[int]
    end: list[int]
    window: list[tuple[float, float]]  # per vehicle
    task_windows: list[tuple[float, float]] | None
    capacity: list[list[float]] | None  # per vehicle, per dimension
    demand: list[list[float]] | None  # per task, per dimension
    prizes: list[float] | None
    pickup_of: dict[int, int]  # delivery task -> its pickup
    delivery_of: dict[int, int]  # pickup task -> its delivery
    allowed: list[frozenset[int] | None]  # per task: vehicles that may serve it (None = any)
    max_cost: list[float]
    max_time: list[float]
    fixed_cost: list[float]
    drop_return: list[bool]
    skip_first: list[bool]
    min_vehicles: int
    weights: dict[str, float]
    time_limit: float

    @property
    def n_tasks(self) -> int:
        return len(self.task_locations)

    @property
    def n_vehicles(self) -> int:
        return len(self.start)


def parse(data: Any) -> tuple[RoutingProblem, list[str]]:
    """Validates ``OptimizedRoutingData``; 422 for schema problems, 400 for inconsistent values."""
    model, warnings = validate(data, ROUTING_MODELS)
    for key, what in _UNSUPPORTED.items():
        if key in model:
            raise CuOptError(f"{key}: the emulator does not support {what}", 422)
    fleet, tasks = model["fleet_data"], model["task_data"]
    for key in _UNSUPPORTED_FLEET:
        if key in fleet:
            raise CuOptError(f"fleet_data.{key}: the emulator does not model vehicle breaks", 422)
    if "cost_matrix_data" not in model:
        raise CuOptError("cost_matrix_data is required (the emulator does not support waypoint graphs)", 422)
    for key in ("initial_solution",):
        if key in model:
            warnings.append(f"{key} is ignored by the emulator")
    config = model.get("solver_config", {})
    if "config_file" in config:
        warnings.append("solver_config.config_file is ignored by the emulator")

    costs = _matrices(model["cost_matrix_data"]["data"], "cost_matrix_data")
    n_loc = len(next(iter(costs.values())))
    travel = _matrices(model.get("travel_time_matrix_data", {}).get("data", {}), "travel_time_matrix_data")
    if any(len(m) != n_loc for m in (*costs.values(), *travel.values())):
        raise CuOptError("all cost and travel-time matrices must have the same size")

    locations = _int_rows(fleet["vehicle_locations"], 2, "fleet_data.vehicle_locations")
    n_veh = len(locations)
    if n_veh == 0:
        raise CuOptError("fleet_data.vehicle_locations must list at least one vehicle")
    task_locations = [int(i) for i in tasks["task_locations"]]
    n_tasks = len(task_locations)
    for where, values in (
        ("fleet_data.vehicle_locations", [i for row in locations for i in row]),
        ("task_data.task_locations", task_locations),
    ):
        if any(not 0 <= i < n_loc for i in values):
            raise CuOptError(f"{where}: locations must lie in [0, {n_loc}) (the matrix size)")

    vehicle_types = (
        [str(t) for t in _sized(fleet.get("vehicle_types"), n_veh, "fleet_data.vehicle_types")]
        if "vehicle_types" in fleet
        else None
    )
    if vehicle_types is None:
        if len(costs) > 1:
            raise CuOptError(
                "fleet_data.vehicle_types is required when cost matrices for several types are given"
            )
        vehicle_types = [next(iter(costs))] * n_veh
    missing = sorted(set(vehicle_types) - set(costs))
    if missing:
        raise CuOptError(f"no cost matrix for vehicle type(s) {missing} in cost_matrix_data.data")
    cost_lists = {k: m.tolist() for k, m in costs.items()}
    travel_lists = {k: m.tolist() for k, m in travel.items()}

    service = tasks.get("service_times")
    if isinstance(service, dict):
        per_type = {
            k: _sized(v, n_tasks, f"task_data.service_times.{k}").tolist() for k, v in service.items()
        }
        service_of = [per_type.get(t, [0.0] * n_tasks) for t in vehicle_types]
    else:
        shared = (
            _sized(service, n_tasks, "task_data.service_times").tolist()
            if service is not None
            else [0.0] * n_tasks
        )
        service_of = [shared] * n_veh

    capacity = demand = None
    if "demand" in tasks or "capacities" in fleet:
        caps = _matrix(fleet.get("capacities"), n_veh, "fleet_data.capacities")
        dem = _matrix(tasks.get("demand"), n_tasks, "task_data.demand")
        if caps is None:
            raise CuOptError("task_data.demand needs fleet_data.capacities")
        if dem is not None and len(dem) != len(caps):
            raise CuOptError(
                "task_data.demand and fleet_data.capacities must have the same number of dimensions"
            )
        capacity = caps.T.tolist()
        demand = dem.T.tolist() if dem is not None else [[0.0] * len(caps)] * n_tasks

    pickup_of, delivery_of = _pairs(tasks.get("pickup_and_delivery_pairs"), n_tasks)
    allowed = _allowed(tasks.get("order_vehicle_match"), fleet.get("vehicle_order_match"), n_tasks, n_veh)
    objectives = dict(config.get("objectives") or {})
    weights = {
        "cost": objectives.get("cost", 1.0),
        "travel_time": objectives.get("travel_time", 0.0),
        "prize": objectives.get("prize", 1.0 if "prizes" in tasks else 0.0),
        "vehicle_fixed_cost": objectives.get("vehicle_fixed_cost", 1.0),
        "variance_route_size": objectives.get("variance_route_size", 0.0),
        "variance_route_service_time": objectives.get("variance_route_service_time", 0.0),
    }
    if weights["variance_route_size"] or weights["variance_route_service_time"]:
        warnings.append("variance objectives are reported but not optimized by the emulator")
    windows = _windows(fleet.get("vehicle_time_windows"), n_veh, "fleet_data.vehicle_time_windows")
    return (
        RoutingProblem(
            task_locations=task_locations,
            task_names=list(tasks["task_ids"]) if "task_ids" in tasks else [str(i) for i in range(n_tasks)],
            vehicle_names=list(fleet["vehicle_ids"])
            if "vehicle_ids" in fleet
            else [str(v) for v in range(n_veh)],
            cost=[cost_lists[t] for t in vehicle_types],
            travel=[travel_lists.get(t, cost_lists[t]) for t in vehicle_types],
            service=service_of,
            start=[row[0] for row in locations],
            end=[row[1] for row in locations],
            window=windows or [(0.0, math.inf)] * n_veh,
            task_windows=_windows(tasks.get("task_time_windows"), n_tasks, "task_data.task_time_windows"),
            capacity=capacity,
            demand=demand,
            prizes=_sized(tasks.get("prizes"), n_tasks, "task_data.prizes").tolist()
            if "prizes" in tasks
            else None,
            pickup_of=pickup_of,
            delivery_of=delivery_of,
            allowed=allowed,
            max_cost=_per_vehicle(fleet, "vehicle_max_costs", n_veh, math.inf),
            max_time=_per_vehicle(fleet, "vehicle_max_times", n_veh, math.inf),
            fixed_cost=_per_vehicle(fleet, "vehicle_fixed_costs", n_veh, 0.0),
            drop_return=[
                bool(b) for b in _sized(fleet.get("drop_return_trips"), n_veh, "fleet_data.drop_return_trips")
            ]
            if "drop_return_trips" in fleet
            else [False] * n_veh,
            skip_first=[
                bool(b) for b in _sized(fleet.get("skip_first_trips"), n_veh, "fleet_data.skip_first_trips")
            ]
            if "skip_first_trips" in fleet
            else [False] * n_veh,
            min_vehicles=int(fleet.get("min_vehicles", 0)),
            weights=weights,
            time_limit=min(float(config.get("time_limit", DEFAULT_TIME_LIMIT)), MAX_TIME_LIMIT),
        ),
        warnings,
    )


def _matrices(data: dict[str, Any], where: str) -> dict[str, np.ndarray]:
    result = {}
    for key, rows in data.items():
        try:
            matrix = np.asarray(rows, dtype=np.float64)
        except ValueError:
            raise CuOptError(f"{where}.data.{key} must be a square matrix") from None
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise CuOptError(f"{where}.data.{key} must be a non-empty square matrix")
        if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
            raise CuOptError(f"{where}.data.{key} must hold finite, non-negative values")
        result[key] = matrix
    if where == "cost_matrix_data" and not result:
        raise CuOptError("cost_matrix_data.data must hold at least one matrix")
    return result


def _sized(values: Any, n: int, where: str) -> Any:
    if values is not None and len(values) != n:
        raise CuOptError(f"{where} must hold {n} entries, got {len(values)}")
    return values


def _matrix(rows: list[np.ndarray] | None, n: int, where: str) -> np.ndarray | None:
    """``rows`` = one list of ``n`` numbers per dimension (cuOpt's layout) as a dims x n array."""
    if rows is None:
        return None
    if not rows or any(len(row) != n for row in rows):
        raise CuOptError(f"{where} must hold, per dimension, a list of {n} values")
    return np.asarray(rows, dtype=np.float64)


def _int_rows(rows: list[np.ndarray], width: int, where: str) -> list[list[int]]:
    if any(len(row) != width for row in rows):
        raise CuOptError(f"{where} must hold pairs of {width} integers")
    return [[int(i) for i in row] for row in rows]


def _windows(rows: list[np.ndarray] | None, n: int, where: str) -> list[tuple[float, float]] | None:
    if rows is None:
        return None
    if len(rows) != n or any(len(row) != 2 or row[0] > row[1] for row in rows):
        raise CuOptError(f"{where} must hold {n} [earliest, latest] pairs with earliest <= latest")
    return [(float(row[0]), float(row[1])) for row in rows]


def _per_vehicle(fleet: dict[str, Any], key: str, n: int, default: float) -> list[float]:
    values = _sized(fleet.get(key), n, f"fleet_data.{key}")
    return values.tolist() if values is not None else [default] * n


def _pairs(rows: list[np.ndarray] | None, n_tasks: int) -> tuple[dict[int, int], dict[int, int]]:
    pickup_of: dict[int, int] = {}
    delivery_of: dict[int, int] = {}
    for pickup, delivery in _int_rows(rows or [], 2, "task_data.pickup_and_delivery_pairs"):
        if not (0 <= pickup < n_tasks and 0 <= delivery < n_tasks) or pickup == delivery:
            raise CuOptError("task_data.pickup_and_delivery_pairs must pair two different task indices")
        if {pickup, delivery} & (set(pickup_of) | set(delivery_of)):
            raise CuOptError("task_data.pickup_and_delivery_pairs: a task may be in one pair only")
        pickup_of[delivery], delivery_of[pickup] = pickup, delivery
    return pickup_of, delivery_of


def _allowed(order_match: Any, vehicle_match: Any, n_tasks: int, n_veh: int) -> list[frozenset[int] | None]:
    allowed: list[set[int] | None] = [None] * n_tasks
    for entry in order_match or []:
        task, vehicles = entry["order_id"], [int(v) for v in entry["vehicle_ids"]]
        if not 0 <= task < n_tasks or any(not 0 <= v < n_veh for v in vehicles):
            raise CuOptError("task_data.order_vehicle_match refers to an unknown task or vehicle")
        allowed[task] = (allowed[task] or set()) | set(vehicles)
    if vehicle_match:
        by_task: dict[int, set[int]] = {}
        for entry in vehicle_match:
            vehicle, orders = entry["vehicle_id"], [int(t) for t in entry["order_ids"]]
            if not 0 <= vehicle < n_veh or any(not 0 <= t < n_tasks for t in orders):
                raise CuOptError("fleet_data.vehicle_order_match refers to an unknown task or vehicle")
            for task in orders:
                by_task.setdefault(task, set()).add(vehicle)
        for task, vehicles in by_task.items():
            allowed[task] = vehicles if allowed[task] is None else allowed[task] & vehicles
    return [frozenset(a) if a is not None else None for a in allowed]


def solve(data: Any) -> tuple[dict[str, Any], list[str], list[str]]:
    """Solves a routing problem: (cuOpt ``response`` object, notes, warnings)."""
    from optimization_emulator.cuopt.routing_search import search

    started = time.perf_counter()
    problem, warnings = parse(data)
    solution = search(problem)
    answer = {
        "status": 0 if not solution.unserved else 1,
        "num_vehicles": sum(1 for route in solution.routes if route),
        "solution_cost": solution.objective,
        "objective_values": solution.objective_values,
        "vehicle_data": {
            problem.vehicle_names[v]: _vehicle_data(problem, solution, v)
            for v, route in enumerate(solution.routes)
            if route
        },
        "initial_solutions": [],
        "dropped_tasks": {  # left out for their prize, or (infeasible answer) not servable at all
            "task_id": [problem.task_names[t] for t in sorted(solution.dropped + solution.unserved)],
            "task_index": sorted(solution.dropped + solution.unserved),
        },
    }
    notes = []
    if solution.unserved:
        names = [problem.task_names[t] for t in solution.unserved]
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        notes.append(
            f"Infeasible: {len(names)} task(s) cannot be served within the capacities, time windows and "
            f"vehicle limits: {shown}"
        )
        key = "solver_infeasible_response"
    else:
        key = "solver_response"
    return {key: answer, "total_solve_time": time.perf_counter() - started}, notes, warnings


def _vehicle_data(problem: RoutingProblem, solution: Any, v: int) -> dict[str, list[Any]]:
    route = solution.routes[v]
    stamps = solution.schedules[v]
    kinds = ["Pickup" if t in problem.delivery_of else "Delivery" for t in route]
    task_ids = [problem.task_names[t] for t in route]
    locations = [problem.task_locations[t] for t in route]
    head = [] if problem.skip_first[v] else ["Depot"]
    tail = [] if problem.drop_return[v] else ["Depot"]
    return {
        "task_id": head + task_ids + tail,
        "arrival_stamp": stamps,
        "type": head + kinds + tail,
        "route": ([problem.start[v]] if head else []) + locations + ([problem.end[v]] if tail else []),
    }
