"""The emulator's routing heuristic: every answer is checked independently (``check_routing``)."""

from __future__ import annotations

import copy
import itertools
import json
import time

import pytest

from optimization_emulator import cuopt
from optimization_emulator.cuopt import generate
from optimization_emulator.testing.cuopt import TINY_ROUTING, check_routing


def _solve(problem: dict) -> dict:
    body = cuopt.solve(problem)
    json.dumps(body, allow_nan=False)
    return body["response"]


def _line(n: int) -> list[list[float]]:
    """Locations on a line: cost |i - j|."""
    return [[float(abs(i - j)) for j in range(n)] for i in range(n)]


def test_tiny_routing_of_the_docs() -> None:
    response = _solve(TINY_ROUTING)
    answer = check_routing(TINY_ROUTING, response)
    assert answer["solution_cost"] == 2.0 and answer["num_vehicles"] == 1
    assert answer["objective_values"] == {"cost": 2.0}
    route = next(iter(answer["vehicle_data"].values()))
    assert route["task_id"] == ["Depot", "0", "1", "Depot"] and route["route"] == [0, 0, 1, 0]
    assert route["type"] == ["Depot", "Delivery", "Delivery", "Depot"]
    assert answer["dropped_tasks"] == {"task_id": [], "task_index": []}
    assert response["total_solve_time"] >= 0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("time_windows", [True, False], ids=["tw", "no-tw"])
def test_random_instances_are_feasible(seed: int, time_windows: bool) -> None:
    problem = generate.routing_problem(30, 5, seed, time_windows=time_windows, time_limit=2)
    answer = check_routing(problem, _solve(problem))
    assert answer["solution_cost"] == pytest.approx(answer["objective_values"]["cost"])


def test_local_search_beats_a_naive_one_vehicle_per_task_plan() -> None:
    problem = generate.routing_problem(40, 8, 7, time_windows=False, capacities=False, time_limit=2)
    answer = check_routing(problem, _solve(problem))
    matrix = problem["cost_matrix_data"]["data"]["0"]
    naive = sum(matrix[0][loc] + matrix[loc][0] for loc in problem["task_data"]["task_locations"])
    assert answer["solution_cost"] < 0.5 * naive


def test_problem_over_the_inline_limit_solves_in_seconds() -> None:
    problem = generate.routing_problem(150, 8, 1)
    assert len(json.dumps(problem)) > 250_000
    started = time.monotonic()
    check_routing(problem, _solve(problem))
    assert time.monotonic() - started < problem["solver_config"]["time_limit"] + 2


def test_vehicle_types_return_trips_and_first_trips() -> None:
    n = 6
    cheap, dear = _line(n), [[2 * v for v in row] for row in _line(n)]
    problem = {
        "cost_matrix_data": {"data": {"1": cheap, "2": dear}},
        "task_data": {
            "task_locations": [1, 2, 3, 4, 5],
            "task_ids": ["a", "b", "c", "d", "e"],
            "demand": [[1, 1, 1, 1, 1]],
        },
        "fleet_data": {
            "vehicle_locations": [[0, 0], [0, 5], [0, 0]],
            "vehicle_ids": ["van", "truck", "bike"],
            "vehicle_types": [2, 1, 2],
            "drop_return_trips": [False, True, False],
            "skip_first_trips": [False, False, True],
            "capacities": [[2, 10, 2]],
        },
    }
    answer = check_routing(problem, _solve(problem))
    truck = answer["vehicle_data"].get("truck")
    assert truck is not None and truck["task_id"][-1] != "Depot"  # no return trip


def test_pickup_and_delivery_pairs_stay_together_and_in_order() -> None:
    n = 7
    problem = {
        "cost_matrix_data": {"data": {"0": _line(n)}},
        "task_data": {
            "task_locations": [5, 1, 6, 2, 3, 4],
            "demand": [[1, -1, 1, -1, 2, -2]],
            "pickup_and_delivery_pairs": [[0, 1], [2, 3], [4, 5]],
        },
        "fleet_data": {"vehicle_locations": [[0, 0], [0, 0]], "capacities": [[2, 2]]},
    }
    answer = check_routing(problem, _solve(problem))
    for route in answer["vehicle_data"].values():
        order = [int(t) for t, kind in zip(route["task_id"], route["type"]) if kind != "Depot"]
        for pickup, delivery in problem["task_data"]["pickup_and_delivery_pairs"]:
            assert (pickup in order) == (delivery in order)
            if pickup in order:
                assert order.index(pickup) < order.index(delivery)
                assert route["type"][route["task_id"].index(str(pickup))] == "Pickup"


def test_prizes_let_unprofitable_tasks_be_dropped() -> None:
    problem = {
        "cost_matrix_data": {"data": {"0": _line(12)}},
        "task_data": {"task_locations": [1, 2, 11], "prizes": [10.0, 10.0, 1.0]},
        "fleet_data": {"vehicle_locations": [[0, 0]]},
    }
    answer = check_routing(problem, _solve(problem))
    assert answer["dropped_tasks"] == {"task_id": ["2"], "task_index": [2]}
    assert answer["objective_values"]["prize"] == 20.0


def test_order_vehicle_match_and_max_costs() -> None:
    problem = {
        "cost_matrix_data": {"data": {"0": _line(5)}},
        "task_data": {
            "task_locations": [1, 2, 3, 4],
            "order_vehicle_match": [{"order_id": 3, "vehicle_ids": [1]}],
        },
        "fleet_data": {"vehicle_locations": [[0, 0], [0, 0]], "vehicle_max_costs": [6.0, 100.0]},
    }
    answer = check_routing(problem, _solve(problem))
    assert "3" in answer["vehicle_data"]["1"]["task_id"]
    if "0" in answer["vehicle_data"]:
        route = answer["vehicle_data"]["0"]["route"]
        assert sum(abs(a - b) for a, b in itertools.pairwise(route)) <= 6.0


def test_min_vehicles_spreads_the_work() -> None:
    problem = copy.deepcopy(TINY_ROUTING)
    problem["fleet_data"]["min_vehicles"] = 2
    answer = check_routing(problem, _solve(problem))
    assert answer["num_vehicles"] == 2


def test_unservable_task_gives_an_infeasible_response() -> None:
    problem = {
        "cost_matrix_data": {"data": {"0": _line(4)}},
        "task_data": {"task_locations": [1, 3], "task_time_windows": [[0, 10], [0, 2]]},
        "fleet_data": {"vehicle_locations": [[0, 0]]},
    }
    response = cuopt.solve(problem)
    answer = response["response"]["solver_infeasible_response"]
    assert answer["status"] == 1 and "solver_response" not in response["response"]
    assert answer["dropped_tasks"]["task_index"] == [1]
    assert "1 task(s) cannot be served" in response["notes"][0]
