"""Local-search moves for the routing heuristic, each a full pass over the current solution.

Each move applies improvements as it finds them and reports whether it found any; the search
repeats rounds of all moves until a round finds nothing (a local optimum) or time runs out.
Before a candidate is checked in full (``Search.accept``), a lower bound of its objective —
travel costs only, updated in O(1) from the changed arcs where the move allows it — rules out
the great majority of candidates cheaply.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from optimization_emulator.cuopt.routing_search import EPS, IMPROVEMENT, arc

if TYPE_CHECKING:
    from optimization_emulator.cuopt.routing_search import Search


def improve(s: Search) -> None:
    """Rounds of every move until a round finds no improvement or the time limit passes."""
    moves = (relocate, two_opt, swap, exchange_tails, insert_dropped)
    improved = True
    while improved and not s.out_of_time():
        improved = False
        for move in moves:
            improved = move(s) or improved


def relocate(s: Search) -> bool:
    """Move each task (or pair) to its best place anywhere, or drop it when prizes allow."""
    improved = False
    for task in range(s.p.n_tasks):
        unit = s.unit(task)
        v = next((v for v, seq in enumerate(s.routes) if task in seq), None)
        if unit[0] != task or v is None or s.out_of_time():
            continue
        rest = [t for t in s.routes[v] if t not in unit]
        rest_value = s.route_value(v, rest)
        if rest_value is None:
            continue
        saved = s.value[v] - rest_value
        if s.p.prizes is not None and saved > EPS:
            s.apply(v, rest, rest_value)
            s.unassigned.update(unit)
            improved = True
            continue
        old = s.routes[v], s.value[v]
        s.apply(v, rest, rest_value)
        best = s.best_insertion(unit)
        if best is not None and best[0] < saved - IMPROVEMENT:
            s.apply(best[1], best[2])
            improved = True
        else:
            s.apply(v, *old)
    return improved


def two_opt(s: Search) -> bool:
    """Reverse a stretch of a route (O(1) bound per candidate when costs are symmetric)."""
    improved = False
    for v in range(len(s.routes)):
        changed = True
        while changed and not s.out_of_time():
            seq, cost = s.routes[v], s.p.cost[v]
            n = s.nodes(v, seq)
            changed = False
            for i, j in itertools.combinations(range(len(seq)), 2):
                candidate = seq[:i] + seq[i : j + 1][::-1] + seq[j + 1 :] if not s.symmetric else None
                if candidate is None:
                    delta = arc(cost, n[i], n[j + 1]) + arc(cost, n[i + 1], n[j + 2])
                    delta -= arc(cost, n[i], n[i + 1]) + arc(cost, n[j + 1], n[j + 2])
                    lower = s.lower[v] + s.w_cost * delta
                else:
                    lower = s.bound(v, candidate)
                if lower >= s.value[v] - IMPROVEMENT:
                    continue
                candidate = candidate or seq[:i] + seq[i : j + 1][::-1] + seq[j + 1 :]
                if s.accept(((v, candidate),), lower):
                    changed = improved = True
                    break
    return improved


def swap(s: Search) -> bool:
    """Exchange two tasks between two routes (O(1) bound per candidate)."""
    improved = False
    locs = s.p.task_locations
    for a, b in itertools.combinations(range(len(s.routes)), 2):
        if s.out_of_time():
            break
        ca, cb = s.p.cost[a], s.p.cost[b]
        na, nb = s.nodes(a, s.routes[a]), s.nodes(b, s.routes[b])
        for i, j in itertools.product(range(len(s.routes[a])), range(len(s.routes[b]))):
            ra, rb = s.routes[a], s.routes[b]
            x, y = locs[ra[i]], locs[rb[j]]
            delta = (
                arc(ca, na[i], y)
                + arc(ca, y, na[i + 2])
                - arc(ca, na[i], x)
                - arc(ca, x, na[i + 2])
                + arc(cb, nb[j], x)
                + arc(cb, x, nb[j + 2])
                - arc(cb, nb[j], y)
                - arc(cb, y, nb[j + 2])
            )
            lower = s.lower[a] + s.lower[b] + s.w_cost * delta
            if lower >= s.value[a] + s.value[b] - IMPROVEMENT:
                continue
            new_a = ra[:i] + [rb[j]] + ra[i + 1 :]
            new_b = rb[:j] + [ra[i]] + rb[j + 1 :]
            if s.accept(((a, new_a), (b, new_b)), lower):
                improved = True
                na, nb = s.nodes(a, new_a), s.nodes(b, new_b)
    return improved


def exchange_tails(s: Search) -> bool:
    """2-opt*: route a keeps its head and takes b's tail, route b the other way round."""
    improved = False
    for a, b in itertools.permutations(range(len(s.routes)), 2):
        ra, rb = s.routes[a], s.routes[b]
        if not ra or s.out_of_time():
            continue
        bound = _tails_bound(s, a, b)
        current = s.value[a] + s.value[b] - IMPROVEMENT
        for i, j in itertools.product(range(1, len(ra) + 1), range(len(rb) + 1)):
            lower = bound(i, j) if bound else None
            if lower is not None and lower >= current:
                continue
            if s.accept(((a, ra[:i] + rb[j:]), (b, rb[:j] + ra[i:])), lower):
                improved = True
                break
    return improved


def _tails_bound(s: Search, a: int, b: int) -> Callable[[int, int], float] | None:
    """O(1) lower bounds of the route pair made by :func:`exchange_tails` at cut points (i, j),
    from prefix sums of both routes; None when the vehicles do not share a cost matrix."""
    p = s.p
    cost = p.cost[a]
    if cost is not p.cost[b] or p.skip_first[a] != p.skip_first[b]:
        return None
    na, nb = s.nodes(a, s.routes[a]), s.nodes(b, s.routes[b])
    pa, pb = _prefix(cost, na), _prefix(cost, nb)
    la, lb = len(na) - 2, len(nb) - 2  # tasks in each route
    constant = s.w_fixed * p.fixed_cost[a] - s.w_prize * sum(s.prize[t] for t in s.routes[a] + s.routes[b])

    def bound(i: int, j: int) -> float:
        if j < lb:
            cost_a = pa[i] + arc(cost, na[i], nb[j + 1]) + pb[lb] - pb[j + 1] + arc(cost, nb[lb], na[-1])
        else:
            cost_a = pa[i] + arc(cost, na[i], na[-1])
        if j == 0 and i == la:  # route b ends up empty
            return s.w_cost * cost_a + constant
        if i < la:
            cost_b = pb[j] + arc(cost, nb[j], na[i + 1]) + pa[la] - pa[i + 1] + arc(cost, na[la], nb[-1])
        else:
            cost_b = pb[j] + arc(cost, nb[j], nb[-1])
        return s.w_cost * (cost_a + cost_b) + constant + s.w_fixed * p.fixed_cost[b]

    return bound


def _prefix(cost: list[list[float]], nodes: list[int | None]) -> list[float]:
    """Travel cost from the first node to each node."""
    sums = [0.0]
    for x, y in itertools.pairwise(nodes):
        sums.append(sums[-1] + arc(cost, x, y))
    return sums


def insert_dropped(s: Search) -> bool:
    """Serve left-out tasks where possible (prizes: only where serving them pays)."""
    improved = False
    for task in sorted(s.unassigned):
        unit = s.unit(task)
        if task not in s.unassigned or unit[0] != task:
            continue
        best = s.best_insertion(unit)
        if best is not None and (s.p.prizes is None or best[0] < -EPS):
            s.apply(best[1], best[2])
            s.unassigned.difference_update(unit)
            improved = True
    return improved


def spread_to_min_vehicles(s: Search) -> None:
    """Best effort for ``min_vehicles``: move the cheapest task (or pair) onto an unused vehicle."""
    while sum(1 for r in s.routes if r) < s.p.min_vehicles and not s.out_of_time():
        options = []
        empty = [w for w, seq in enumerate(s.routes) if not seq]
        for v, seq in enumerate(s.routes):
            for unit in {s.unit(t) for t in seq}:
                rest = [t for t in seq if t not in unit]
                rest_value = s.route_value(v, rest) if rest else None
                for w in empty if rest_value is not None else ():
                    value = s.route_value(w, list(unit))
                    if value is not None:
                        options.append((value + rest_value - s.value[v], v, w, rest, list(unit)))
        if not options:
            return
        _, v, w, rest, seq = min(options, key=lambda o: o[:3])
        s.apply(v, rest)
        s.apply(w, seq)
