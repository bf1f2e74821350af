"""The emulator's stand-in for the cuOpt container: ``solve(problem)`` gives cuOpt's response body.

What NVCF forwards to cuOpt's ``POST /cuopt/cuopt`` is ``{"action"?, "data", "client_version"?}``;
this package answers it the way cuOpt 25.x does — ``{"response": {...}, "warnings": [...],
"notes": [...]}`` — with real CPU solvers: HiGHS for LP/MILP (``lp.py``) and a local-search
heuristic for routing (``routing.py``, ``routing_search.py``). Bad problems raise
:class:`CuOptError`, whose ``body()`` is cuOpt's ``{"error": ..., "error_result": true}``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from optimization_emulator.cuopt.schema import CuOptError, classify

if TYPE_CHECKING:
    from optimization_emulator.cuopt.lp import SolveObserver

__all__ = ["ACTIONS", "SERVER_VERSION", "CuOptError", "solve"]

#: The cuOpt release the emulator answers as (client versions are compared with it).
SERVER_VERSION = "25.05"
_SOLVE_ACTIONS = {"cuOpt_OptimizedRouting", "cuOpt_LP", "cuOpt_Solver"}
_VALIDATE_ACTIONS = {"cuOpt_RoutingValidator", "cuOpt_LPValidator", "cuOpt_Validator"}
ACTIONS = frozenset(_SOLVE_ACTIONS | _VALIDATE_ACTIONS)


def solve(
    problem: Any,
    *,
    action: str | None = None,
    client_version: str | None = None,
    observer: SolveObserver | None = None,
) -> dict[str, Any]:
    """Solves (or, for the validator actions, only validates) one cuOpt problem.

    ``problem`` is the decoded ``data``: an LPData object, a list of them (batch LP) or an
    OptimizedRoutingData object. ``observer`` (LP/MILP only) takes the solver log and the MIP
    incumbents. Raises :class:`CuOptError` for invalid requests.
    """
    if action is not None and action not in ACTIONS:
        raise CuOptError(f"unknown action {action!r}; expected one of {', '.join(sorted(ACTIONS))}")
    warnings = _version_warnings(client_version)
    kind = classify(problem)
    started = time.perf_counter()
    if kind == "lp":
        from optimization_emulator.cuopt import lp

        if action in _VALIDATE_ACTIONS:
            for item in problem if isinstance(problem, list) else [problem]:
                warnings += lp.parse(item)[1]
            return _body({"msg": "Input is Valid"}, warnings, [])
        answer, notes, more = lp.solve_batch(problem, observer)
        response = {"solver_response": answer, "total_solve_time": time.perf_counter() - started}
        return _body(response, warnings + more, notes)
    from optimization_emulator.cuopt import routing

    if action in _VALIDATE_ACTIONS:
        return _body({"msg": "Input is Valid"}, warnings + routing.parse(problem)[1], [])
    response, notes, more = routing.solve(problem)
    return _body(response, warnings + more, notes)


def _body(response: dict[str, Any], warnings: list[str], notes: list[str]) -> dict[str, Any]:
    return {"response": response, "warnings": warnings, "notes": notes}


def _version_warnings(client_version: str | None) -> list[str]:
    """cuOpt only warns (never fails) when a client's major.minor differs from the server's."""
    if not client_version or client_version == "custom":
        return []
    if ".".join(client_version.split(".")[:2]) == SERVER_VERSION:
        return []
    return [
        (
            f"Client version {client_version} does not match server version {SERVER_VERSION}; "
            "results may differ (send client_version 'custom' to skip this check)"
        )
    ]
