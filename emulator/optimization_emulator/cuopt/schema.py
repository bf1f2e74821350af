"""Validation of cuOpt problems into plain Python/numpy values, with cuOpt-style errors.

The cuOpt server validates requests with strict pydantic models (unknown keys are rejected) and
answers ``{"error": "<message>", "error_result": true}`` with HTTP 400 for invalid values and 422
for data it cannot use. This module mirrors that: a small declarative description of the models
(``LP_MODELS``, ``ROUTING_MODELS``) is checked recursively, every problem found is collected into
one pydantic-like message, and the result is the same nesting of dicts with numeric lists turned
into numpy arrays, ready for the solvers in ``lp.py`` and ``routing.py``.

Status codes used here (documented in docs/emulator.md): 422 for schema violations (unknown or
missing keys, wrong types, undecodable data); the solvers raise 400 for values that are well-formed
but inconsistent (lengths that do not match, indices out of range).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Most validation problems listed in one error message.
MAX_REPORTED = 10
#: Strings that stand for infinite bounds (cuOpt uses "inf" and "ninf").
_INFINITIES = {"inf": math.inf, "+inf": math.inf, "infinity": math.inf, "ninf": -math.inf, "-inf": -math.inf}


class CuOptError(Exception):
    """What the cuOpt container answers for a bad request: an HTTP status and a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "error_result": True}


# -- the type language of the model tables --------------------------------------------------------
NUM, INT, BOOL, STR, ANY = "number", "integer", "boolean", "string", "any"
#: A number or one of the infinity words.
BOUND = "bound"


@dataclasses.dataclass(frozen=True)
class ListOf:
    item: Any


@dataclasses.dataclass(frozen=True)
class MapOf:
    """An object with arbitrary string keys (vehicle types) and values of one kind."""

    item: Any


@dataclasses.dataclass(frozen=True)
class OneOf:
    options: tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    fields: Mapping[str, Any]
    required: tuple[str, ...] = ()
    #: Keys accepted but not interpreted (reported as warnings by the solver).
    lenient: bool = False


_NUMS, _INTS, _BOUNDS, _STRS = ListOf(NUM), ListOf(INT), ListOf(BOUND), ListOf(STR)
_MATRIX = ListOf(_NUMS)
_INT_ROWS = ListOf(_INTS)


def _all(kind: Any, names: str) -> dict[str, Any]:
    return dict.fromkeys(names.split(), kind)


#: Tolerance names of cuOpt 25.x plus the pre-25.05 ones it still renames; unknown ones only warn.
_TOLERANCES = Model(
    "Tolerances",
    _all(
        NUM,
        "optimality absolute_primal_tolerance relative_primal_tolerance absolute_dual_tolerance "
        "relative_dual_tolerance absolute_gap_tolerance relative_gap_tolerance primal_infeasible_tolerance "
        "dual_infeasible_tolerance mip_integrality_tolerance mip_absolute_gap mip_relative_gap "
        "mip_absolute_tolerance mip_relative_tolerance absolute_primal absolute_dual absolute_gap "
        "relative_primal relative_dual relative_gap primal_infeasible dual_infeasible integrality_tolerance "
        "absolute_mip_gap relative_mip_gap",
    ),
    lenient=True,
)

LP_SOLVER_CONFIG = Model(
    "SolverConfig",
    {
        "time_limit": NUM,
        "tolerances": _TOLERANCES,
        "presolve": OneOf((BOOL, INT)),
        **_all(
            INT,
            "iteration_limit method pdlp_solver_mode solver_mode num_cpu_threads augmented folding dualize "
            "ordering barrier_dual_initial_point concurrent_halt",
        ),
        **_all(
            BOOL,
            "mip_heuristics_only heuristics_only infeasibility_detection crossover log_to_console "
            "strict_satisfiable first_primal_feasible per_constraint_residual save_best_primal_so_far "
            "mip_scaling dual_postsolve cudss_deterministic eliminate_dense_columns",
        ),
        **_all(STR, "log_file solution_file user_problem_file"),
    },
    lenient=True,
)

LP_MODELS = Model(
    "LPData",
    {
        "csr_constraint_matrix": Model(
            "CSRConstraintMatrix",
            {"offsets": _INTS, "indices": _INTS, "values": _NUMS},
            ("offsets", "indices", "values"),
        ),
        "constraint_bounds": Model(
            "ConstraintBounds",
            {"upper_bounds": _BOUNDS, "lower_bounds": _BOUNDS, "bounds": _BOUNDS, "types": _STRS},
        ),
        "objective_data": Model(
            "ObjectiveData",
            {"coefficients": _NUMS, "scalability_factor": NUM, "offset": NUM},
            ("coefficients",),
        ),
        "variable_bounds": Model("VariableBounds", {"upper_bounds": _BOUNDS, "lower_bounds": _BOUNDS}),
        "initial_solution": Model("InitialSolution", {"primal": _NUMS, "dual": _NUMS}),
        "maximize": BOOL,
        "variable_types": _STRS,
        "variable_names": _STRS,
        "solver_config": LP_SOLVER_CONFIG,
    },
    ("csr_constraint_matrix", "constraint_bounds", "objective_data"),
)

_WAYPOINT_GRAPH = MapOf(Model("WaypointGraph", {"offsets": _INTS, "edges": _INTS, "weights": _NUMS}))

ROUTING_MODELS = Model(
    "OptimizedRoutingData",
    {
        "cost_matrix_data": Model("CostMatrices", {"data": MapOf(_MATRIX)}, ("data",)),
        "travel_time_matrix_data": Model("TravelTimeMatrices", {"data": MapOf(_MATRIX)}, ("data",)),
        "cost_waypoint_graph_data": Model("WaypointGraphData", {"waypoint_graph": _WAYPOINT_GRAPH}),
        "travel_time_waypoint_graph_data": Model("WaypointGraphData", {"waypoint_graph": _WAYPOINT_GRAPH}),
        "fleet_data": Model(
            "FleetData",
            {
                "vehicle_locations": _INT_ROWS,
                "vehicle_ids": _STRS,
                "capacities": _MATRIX,
                "vehicle_time_windows": _MATRIX,
                "vehicle_break_time_windows": ListOf(_MATRIX),
                "vehicle_break_durations": _MATRIX,
                "vehicle_break_locations": _INTS,
                "vehicle_breaks": ListOf(Model("VehicleBreak", {}, lenient=True)),
                "vehicle_types": _INTS,
                "vehicle_order_match": ListOf(
                    Model(
                        "VehicleOrderMatch",
                        {"vehicle_id": INT, "order_ids": _INTS},
                        ("vehicle_id", "order_ids"),
                    )
                ),
                "skip_first_trips": ListOf(BOOL),
                "drop_return_trips": ListOf(BOOL),
                "min_vehicles": INT,
                "vehicle_max_costs": _NUMS,
                "vehicle_max_times": _NUMS,
                "vehicle_fixed_costs": _NUMS,
            },
            ("vehicle_locations",),
        ),
        "task_data": Model(
            "TaskData",
            {
                "task_locations": _INTS,
                "task_ids": _STRS,
                "demand": _MATRIX,
                "pickup_and_delivery_pairs": _INT_ROWS,
                "task_time_windows": _MATRIX,
                "service_times": OneOf((_NUMS, MapOf(_NUMS))),
                "prizes": _NUMS,
                "order_vehicle_match": ListOf(
                    Model(
                        "OrderVehicleMatch",
                        {"order_id": INT, "vehicle_ids": _INTS},
                        ("order_id", "vehicle_ids"),
                    )
                ),
            },
            ("task_locations",),
        ),
        "solver_config": Model(
            "RoutingSolverConfig",
            {
                "time_limit": NUM,
                "objectives": Model(
                    "Objectives",
                    _all(
                        NUM,
                        "cost travel_time variance_route_size variance_route_service_time prize "
                        "vehicle_fixed_cost",
                    ),
                ),
                "config_file": STR,
                "verbose_mode": BOOL,
                "error_logging": BOOL,
            },
        ),
        "initial_solution": ANY,
    },
    ("fleet_data", "task_data"),
)

ROUTING_KEYS = frozenset(ROUTING_MODELS.fields)


def classify(data: Any) -> str:
    """``"lp"`` (an LPData object, or a list of them = batch) or ``"routing"``; 422 otherwise.

    Like the cuOpt server, the kind comes from the data, not from the request's ``action``.
    """
    if isinstance(data, list):
        if data and all(isinstance(item, Mapping) for item in data):
            return "lp"
        raise CuOptError(
            "a list of problems is a batch LP: it must be a non-empty list of LPData objects", 422
        )
    if not isinstance(data, Mapping):
        raise CuOptError(f"the problem must be a JSON object, not {type(data).__name__}", 422)
    if "csr_constraint_matrix" in data:
        return "lp"
    if ROUTING_KEYS & set(data):
        return "routing"
    raise CuOptError(
        "cannot tell the problem type: an LP/MILP needs 'csr_constraint_matrix', a routing problem needs "
        "'cost_matrix_data', 'fleet_data' and 'task_data'",
        422,
    )


def validate(data: Any, model: Model) -> tuple[dict[str, Any], list[str]]:
    """``data`` checked against ``model``: the normalized values and warnings (ignored keys).

    Raises a 422 :class:`CuOptError` listing the first :data:`MAX_REPORTED` problems.
    """
    errors: list[str] = []
    warnings: list[str] = []
    value = _parse(data, model, "", errors, warnings)
    if errors:
        shown = errors[:MAX_REPORTED]
        more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''}"
        raise CuOptError(f"{count} for {model.name}\n" + "\n".join(shown) + more, 422)
    return value, warnings


def _parse(value: Any, spec: Any, path: str, errors: list[str], warnings: list[str]) -> Any:
    if isinstance(spec, Model):
        return _parse_model(value, spec, path, errors, warnings)
    if isinstance(spec, MapOf):
        if not isinstance(value, Mapping):
            errors.append(f"{path}\n  Input should be a valid dictionary")
            return None
        return {str(k): _parse(v, spec.item, _join(path, k), errors, warnings) for k, v in value.items()}
    if isinstance(spec, OneOf):
        for option in spec.options:
            attempt: list[str] = []
            parsed = _parse(value, option, path, attempt, warnings)
            if not attempt:
                return parsed
        errors.append(f"{path}\n  Input does not match any of the accepted forms")
        return None
    if isinstance(spec, ListOf):
        if spec.item in (NUM, INT, BOUND):
            return _numeric_list(value, spec.item, path, errors)
        if not isinstance(value, list):
            errors.append(f"{path}\n  Input should be a valid list")
            return None
        return [_parse(item, spec.item, _join(path, i), errors, warnings) for i, item in enumerate(value)]
    return _scalar(value, spec, path, errors)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _parse_model(value: Any, model: Model, path: str, errors: list[str], warnings: list[str]) -> Any:
    if not isinstance(value, Mapping):
        errors.append(
            f"{path or model.name}\n  Input should be a valid dictionary or instance of {model.name}"
        )
        return None
    result: dict[str, Any] = {}
    for key, item in value.items():
        where = _join(path, key)
        if key not in model.fields:
            if model.lenient:
                warnings.append(f"{where} is not used by the emulator and was ignored")
            else:
                errors.append(f"{where}\n  Extra inputs are not permitted")
            continue
        if item is None:  # pydantic Optional fields: null means "not given"
            continue
        result[key] = _parse(item, model.fields[key], where, errors, warnings)
    for key in model.required:
        if value.get(key) is None:
            errors.append(f"{_join(path, key)}\n  Field required")
    return result


def _scalar(value: Any, kind: Any, path: str, errors: list[str]) -> Any:
    if kind == ANY:
        return value
    if kind == BOOL:
        if isinstance(value, bool):
            return value
        errors.append(f"{path}\n  Input should be a valid boolean")
    elif kind == STR:
        if isinstance(value, str):
            return value
        errors.append(f"{path}\n  Input should be a valid string")
    elif kind == INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        errors.append(f"{path}\n  Input should be a valid integer")
    elif kind in (NUM, BOUND):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == BOUND and isinstance(value, str) and value.strip().lower() in _INFINITIES:
            return _INFINITIES[value.strip().lower()]
        errors.append(f"{path}\n  Input should be a valid number")
    return None


def _numeric_list(value: Any, kind: str, path: str, errors: list[str]) -> np.ndarray | None:
    """A list of numbers as a 1-D numpy array (fast path for long lists, exact messages otherwise)."""
    if not isinstance(value, list):
        errors.append(f"{path}\n  Input should be a valid list")
        return None
    items = value
    if kind == BOUND:
        items = [_INFINITIES.get(v.strip().lower(), v) if isinstance(v, str) else v for v in value]
    if not any(isinstance(v, (bool, str, list, dict)) or v is None for v in items):
        try:
            array = np.asarray(items, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            array = None
        if array is not None and array.ndim == 1:
            if kind != INT:
                return array
            if np.all(np.isfinite(array)) and np.all(array == np.round(array)):
                return array.astype(np.int64)
    for i, item in enumerate(items):  # slow path: find the culprit
        before = len(errors)
        _scalar(item, kind, _join(path, i), errors)
        if len(errors) > before:
            return None
    errors.append(f"{path}\n  Input should be a list of numbers")
    return None
