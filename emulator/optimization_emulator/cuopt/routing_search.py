"""A deterministic routing heuristic: cheapest insertion, then local search until nothing improves.

Pure Python on purpose (no OR-Tools to install): problems sent to an emulator are small enough
(hundreds of tasks) for an O(route length) feasibility check per candidate move. Construction
inserts the hardest tasks first (earliest deadline, then farthest from the depot) at their
cheapest feasible position; pickup-and-delivery pairs are inserted together. Local search applies
first-improvement moves (``routing_moves.py``) until a full round finds nothing better or
``time_limit`` runs out. Every candidate route is checked in full by
:meth:`Search.evaluate` (capacities, time windows with waiting, vehicle window and limits,
pickup-before-delivery, order/vehicle matching), so every move keeps the solution feasible.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any

from optimization_emulator.cuopt.routing import RoutingProblem

EPS = 1e-9
#: Smallest objective decrease a move must bring (guards against cycling on rounding noise).
IMPROVEMENT = 1e-7


@dataclasses.dataclass
class Solution:
    routes: list[list[int]]
    schedules: list[list[float]]
    dropped: list[int]  # tasks left out because serving them did not pay (prizes)
    unserved: list[int]  # tasks that could not be served at all (no prizes): infeasible
    objective: float
    objective_values: dict[str, float]


class Search:
    """The solution being built: a route per vehicle, each route's objective value and its cheap
    lower bound, and the tasks left out; plus the feasibility check and insertion used by the moves."""

    def __init__(self, problem: RoutingProblem) -> None:
        self.p = problem
        self.deadline = time.monotonic() + problem.time_limit
        self.routes: list[list[int]] = [[] for _ in range(problem.n_vehicles)]
        self.value: list[float] = [0.0] * problem.n_vehicles  # objective of each route
        self.lower: list[float] = [0.0] * problem.n_vehicles  # its travel-cost lower bound (bound())
        self.kinds = [self.vehicle_kind(v) for v in range(problem.n_vehicles)]
        self.symmetric = all(
            all(row[j] == matrix[j][i] for i, row in enumerate(matrix) for j in range(i))
            for matrix in {id(m): m for m in problem.cost}.values()
        )
        self.unassigned: set[int] = set()
        self.prize = problem.prizes or [0.0] * problem.n_tasks
        w = problem.weights
        self.w_cost, self.w_time, self.w_prize, self.w_fixed = (
            max(w["cost"], 0.0),
            max(w["travel_time"], 0.0),
            w["prize"],
            w["vehicle_fixed_cost"],
        )

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    # -- feasibility and cost of one route ----------------------------------------------------------
    def evaluate(
        self, v: int, seq: list[int], trace: list[float] | None = None
    ) -> tuple[float, float] | None:
        """(cost, duration) of vehicle ``v`` serving ``seq`` in order, or None when infeasible."""
        p = self.p
        if not seq:
            return 0.0, 0.0
        cost_m, time_m, service, tw = p.cost[v], p.travel[v], p.service[v], p.task_windows
        begin, close = p.window[v]
        t, cost, loc = begin, 0.0, p.start[v]
        if trace is not None and not p.skip_first[v]:
            trace.append(t)
        cap = p.capacity[v] if p.capacity is not None else None
        loads = [0.0] * len(cap) if cap is not None else None
        pairs = bool(p.delivery_of)
        seen: set[int] = set()
        for i, task in enumerate(seq):
            allowed = p.allowed[task]
            if allowed is not None and v not in allowed:
                return None
            where = p.task_locations[task]
            if i or not p.skip_first[v]:
                cost += cost_m[loc][where]
                t += time_m[loc][where]
            if tw is not None:
                early, late = tw[task]
                if t < early:
                    t = early
                elif t > late + EPS:
                    return None
            if trace is not None:
                trace.append(t)
            t += service[task]
            if loads is not None:
                demand = p.demand[task]
                for d, limit in enumerate(cap):
                    loads[d] += demand[d]
                    if loads[d] > limit + EPS:
                        return None
            if pairs:
                pickup = p.pickup_of.get(task)
                if pickup is not None and pickup not in seen:
                    return None
                seen.add(task)
            loc = where
        if pairs and any(p.delivery_of[t] not in seen for t in seen if t in p.delivery_of):
            return None
        if not p.drop_return[v]:
            cost += cost_m[loc][p.end[v]]
            t += time_m[loc][p.end[v]]
            if trace is not None:
                trace.append(t)
        if t > close + EPS or cost > p.max_cost[v] + EPS or t - begin > p.max_time[v] + EPS:
            return None
        return cost, t - begin

    def route_value(self, v: int, seq: list[int]) -> float | None:
        """The objective contribution of ``seq`` on ``v`` (None when infeasible)."""
        if not seq:
            return 0.0
        result = self.evaluate(v, seq)
        if result is None:
            return None
        cost, duration = result
        value = self.w_cost * cost + self.w_time * duration + self.w_fixed * self.p.fixed_cost[v]
        return value - self.w_prize * sum(self.prize[t] for t in seq)

    def bound(self, v: int, seq: list[int]) -> float:
        """A cheap lower bound of :meth:`route_value`: travel costs only (durations are >= 0)."""
        if not seq:
            return 0.0
        cost, n = self.p.cost[v], self.nodes(v, seq)
        total = sum(arc(cost, a, b) for a, b in itertools.pairwise(n))
        return (
            self.w_cost * total
            + self.w_fixed * self.p.fixed_cost[v]
            - self.w_prize * sum(self.prize[t] for t in seq)
        )

    def nodes(self, v: int, seq: list[int]) -> list[int | None]:
        """Locations visited: start, tasks, end (None for a start/end that costs nothing)."""
        p = self.p
        first = None if p.skip_first[v] else p.start[v]
        last = None if p.drop_return[v] else p.end[v]
        return [first, *(p.task_locations[t] for t in seq), last]

    # -- insertion ------------------------------------------------------------------------------------
    def unit(self, task: int) -> tuple[int, ...]:
        """A task, or its pickup-and-delivery pair (moved together)."""
        p = self.p
        if task in p.delivery_of:
            return task, p.delivery_of[task]
        if task in p.pickup_of:
            return p.pickup_of[task], task
        return (task,)

    def candidates(self, v: int, seq: list[int], unit: tuple[int, ...]):
        if len(unit) == 1:
            for i in range(len(seq) + 1):
                yield seq[:i] + [unit[0]] + seq[i:]
            return
        pickup, delivery = unit
        for i in range(len(seq) + 1):
            with_pickup = seq[:i] + [pickup] + seq[i:]
            for j in range(i + 1, len(with_pickup) + 1):
                yield with_pickup[:j] + [delivery] + with_pickup[j:]

    def best_insertion(self, unit: tuple[int, ...], skip: int = -1) -> tuple[float, int, list[int]] | None:
        """Cheapest feasible (delta, vehicle, new route) for ``unit``; one empty vehicle per kind.

        Candidates are tried in order of a lower bound of their delta, so that most are never
        fully evaluated: O(1) per position for a single task, O(route) for a pair.
        """
        best = None
        empty_seen: set[tuple[Any, ...]] = set()
        for v, seq in enumerate(self.routes):
            if v == skip:
                continue
            if not seq:
                if self.kinds[v] in empty_seen:
                    continue
                empty_seen.add(self.kinds[v])
            if len(unit) == 1:
                ranked = self.insertion_bounds(v, seq, unit[0])
                make = lambda i, seq=seq: seq[:i] + [unit[0]] + seq[i:]
            else:
                options = list(self.candidates(v, seq, unit))
                ranked = sorted((self.bound(v, c) - self.value[v], i) for i, c in enumerate(options))
                make = options.__getitem__
            for lower, i in ranked:
                if best is not None and lower >= best[0] - EPS:
                    break
                candidate = make(i)
                value = self.route_value(v, candidate)
                if value is not None and (best is None or value - self.value[v] < best[0] - EPS):
                    best = (value - self.value[v], v, candidate)
        return best

    def insertion_bounds(self, v: int, seq: list[int], task: int) -> list[tuple[float, int]]:
        """(lower bound of the objective change, position) for inserting ``task``, best first."""
        cost, n, x = self.p.cost[v], self.nodes(v, seq), self.p.task_locations[task]
        gain = self.w_prize * self.prize[task] + self.value[v] - self.lower[v]
        if not seq:
            return [
                (
                    self.w_cost * (arc(cost, n[0], x) + arc(cost, x, n[1]))
                    + self.w_fixed * self.p.fixed_cost[v]
                    - gain,
                    0,
                )
            ]
        w = self.w_cost
        return sorted(
            (w * (arc(cost, a, x) + arc(cost, x, b) - arc(cost, a, b)) - gain, i)
            for i, (a, b) in enumerate(itertools.pairwise(n))
        )

    def vehicle_kind(self, v: int) -> tuple[Any, ...]:
        """What makes two empty vehicles interchangeable (only one of each kind is tried)."""
        p = self.p
        return (
            id(p.cost[v]),
            id(p.travel[v]),
            id(p.service[v]),
            p.start[v],
            p.end[v],
            p.window[v],
            tuple(p.capacity[v]) if p.capacity else None,
            p.max_cost[v],
            p.max_time[v],
            p.fixed_cost[v],
            p.drop_return[v],
            p.skip_first[v],
            any(a is not None and v in a for a in p.allowed),
        )

    def construct(self) -> None:
        p = self.p
        units = {self.unit(t) for t in range(p.n_tasks)}

        def hardness(unit: tuple[int, ...]) -> tuple[float, float]:
            late = min(p.task_windows[t][1] for t in unit) if p.task_windows else 0.0
            far = max(p.cost[0][p.start[0]][p.task_locations[t]] for t in unit)
            return late, -far

        for unit in sorted(units, key=lambda u: (hardness(u), u)):
            best = self.best_insertion(unit)
            if best is None or (p.prizes is not None and best[0] >= 0):
                self.unassigned.update(unit)
            else:
                self.apply(best[1], best[2])

    def apply(self, v: int, seq: list[int], value: float | None = None) -> None:
        self.routes[v] = seq
        value = self.route_value(v, seq) if value is None else value
        assert value is not None
        self.value[v], self.lower[v] = value, self.bound(v, seq)

    def accept(self, changes: tuple[tuple[int, list[int]], ...], lower: float | None = None) -> bool:
        """Applies ``changes`` (vehicle, new route) when all are feasible and the total improves;
        ``lower`` is a known lower bound of the new total."""
        current = sum(self.value[v] for v, _ in changes)
        if lower is None:
            lower = sum(self.bound(v, seq) for v, seq in changes)
        if lower >= current - IMPROVEMENT:
            return False
        values = []
        for v, seq in changes:
            value = self.route_value(v, seq)
            if value is None:
                return False
            values.append(value)
        if sum(values) < current - IMPROVEMENT:
            for (v, seq), value in zip(changes, values):
                self.apply(v, seq, value)
            return True
        return False

    # -- result ---------------------------------------------------------------------------------------
    def solution(self) -> Solution:
        p = self.p
        schedules, cost, duration, fixed, prize = [], 0.0, 0.0, 0.0, 0.0
        for v, seq in enumerate(self.routes):
            trace: list[float] = []
            if seq:
                c, d = self.evaluate(v, seq, trace)  # type: ignore[misc]
                cost, duration, fixed = cost + c, duration + d, fixed + p.fixed_cost[v]
                prize += sum(self.prize[t] for t in seq)
            schedules.append(trace)
        values = {"cost": cost}
        if p.weights["travel_time"]:
            values["travel_time"] = duration
        if p.prizes is not None:
            values["prize"] = prize
        if any(p.fixed_cost):
            values["vehicle_fixed_cost"] = fixed
        used = [seq for seq in self.routes if seq]
        if p.weights["variance_route_size"]:
            values["variance_route_size"] = _variance([len(seq) for seq in used])
        if p.weights["variance_route_service_time"]:
            values["variance_route_service_time"] = _variance(
                [sum(p.service[v][t] for t in seq) for v, seq in enumerate(self.routes) if seq]
            )
        signs = {"prize": -1.0}
        objective = sum(signs.get(k, 1.0) * p.weights[k] * value for k, value in values.items())
        leftover = sorted(self.unassigned)
        return Solution(
            routes=[list(seq) for seq in self.routes],
            schedules=schedules,
            dropped=leftover if p.prizes is not None else [],
            unserved=[] if p.prizes is not None else leftover,
            objective=objective,
            objective_values=values,
        )


def arc(matrix: list[list[float]], a: int | None, b: int | None) -> float:
    """Cost of travelling a -> b; nothing when either end is a start or end that costs nothing."""
    return 0.0 if a is None or b is None else matrix[a][b]


def _variance(values: list[float]) -> float:
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return sum((x - mean) ** 2 for x in values) / len(values)


def search(problem: RoutingProblem) -> Solution:
    """Constructs and improves a solution within ``problem.time_limit``."""
    from optimization_emulator.cuopt import routing_moves

    state = Search(problem)
    state.construct()
    routing_moves.improve(state)
    if problem.min_vehicles:
        routing_moves.spread_to_min_vehicles(state)
    return state.solution()
