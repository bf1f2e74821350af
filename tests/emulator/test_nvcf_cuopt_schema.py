"""cuOpt-style errors for malformed problems, actions and versions, and asset decoding by sniffing."""

from __future__ import annotations

import copy
import json
import zlib
from pathlib import Path

import msgpack
import pytest

from optimization_emulator import cuopt
from optimization_emulator.cuopt import CuOptError
from optimization_emulator.cuopt.decode import decode_problem
from optimization_emulator.testing.cuopt import TINY_LP, TINY_ROUTING, pickle_tripwire


def _error(problem, **kwargs) -> CuOptError:
    with pytest.raises(CuOptError) as caught:
        cuopt.solve(problem, **kwargs)
    assert caught.value.body() == {"error": caught.value.message, "error_result": True}
    return caught.value


def _with(problem: dict, path: str, value) -> dict:
    changed = copy.deepcopy(problem)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    target[last] = value
    return changed


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (_with(TINY_LP, "extra", 1), "extra\n  Extra inputs are not permitted"),
        (
            _with(TINY_LP, "csr_constraint_matrix.rows", 1),
            "csr_constraint_matrix.rows\n  Extra inputs are not permitted",
        ),
        (
            _with(TINY_LP, "csr_constraint_matrix.values", [3.0, "x", 2.7, 10.1]),
            "csr_constraint_matrix.values.1\n  Input should be a valid number",
        ),
        (_with(TINY_LP, "maximize", "yes"), "maximize\n  Input should be a valid boolean"),
        ({k: v for k, v in TINY_LP.items() if k != "objective_data"}, "objective_data\n  Field required"),
        (
            _with(TINY_ROUTING, "fleet_data.vehicle_colour", "red"),
            "fleet_data.vehicle_colour\n  Extra inputs",
        ),
        (
            _with(TINY_ROUTING, "task_data.task_locations", "0,1"),
            "task_data.task_locations\n  Input should be a valid list",
        ),
        ({"cost_matrix_data": TINY_ROUTING["cost_matrix_data"]}, "fleet_data\n  Field required"),
        ({"objective": [1, 2]}, "cannot tell the problem type"),
        ([1, 2], "batch LP"),
        ("text", "must be a JSON object"),
        (
            _with(TINY_ROUTING, "cost_waypoint_graph_data", {"waypoint_graph": {}}),
            "does not support waypoint graphs",
        ),
        (
            _with(TINY_ROUTING, "fleet_data.vehicle_break_durations", [[1, 1]]),
            "does not model vehicle breaks",
        ),
    ],
)
def test_schema_violations_are_422(problem, message: str) -> None:
    error = _error(problem)
    assert error.status == 422 and message in error.message, error.message


def test_several_violations_are_listed_together() -> None:
    problem = _with(_with(TINY_LP, "extra", 1), "maximize", "no")
    message = _error(problem).message
    assert (
        message.startswith("2 validation errors for LPData") and "extra" in message and "maximize" in message
    )


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (_with(TINY_LP, "csr_constraint_matrix.offsets", [0, 2, 3]), "offsets"),
        (_with(TINY_LP, "csr_constraint_matrix.indices", [0, 1, 0, 7]), "indices must lie in [0, 2)"),
        (_with(TINY_LP, "constraint_bounds", {"upper_bounds": [5.4]}), "must hold 2 values"),
        (_with(TINY_LP, "constraint_bounds", {"bounds": [1, 2], "types": ["L", "X"]}), "'E', 'L' or 'G'"),
        (_with(TINY_LP, "variable_types", ["I"]), "variable_types must hold 2"),
        (_with(TINY_ROUTING, "cost_matrix_data.data", {"0": [[0, 1], [1, 0], [1, 1]]}), "square matrix"),
        (_with(TINY_ROUTING, "task_data.task_locations", [0, 5]), "locations must lie in [0, 2)"),
        (_with(TINY_ROUTING, "task_data.demand", [[1, 1]]), "needs fleet_data.capacities"),
        (_with(TINY_ROUTING, "task_data.task_time_windows", [[5, 1], [0, 9]]), "earliest <= latest"),
        (
            _with(TINY_ROUTING, "cost_matrix_data.data", {"0": [[0, 1], [1, 0]], "1": [[0, 2], [2, 0]]}),
            "vehicle_types is required",
        ),
    ],
)
def test_inconsistent_values_are_400(problem, message: str) -> None:
    error = _error(problem)
    assert error.status == 400 and message in error.message, error.message


def test_actions_and_client_versions() -> None:
    assert _error(TINY_LP, action="cuOpt_Teleport").status == 400
    assert cuopt.solve(TINY_LP, action="cuOpt_LPValidator")["response"] == {"msg": "Input is Valid"}
    assert _error(_with(TINY_LP, "extra", 1), action="cuOpt_Validator").status == 422
    assert cuopt.solve(TINY_ROUTING, client_version="custom")["warnings"] == []
    assert cuopt.solve(TINY_ROUTING, client_version=cuopt.SERVER_VERSION + ".00")["warnings"] == []
    warning = cuopt.solve(TINY_ROUTING, client_version="23.04")["warnings"]
    assert len(warning) == 1 and "does not match server version" in warning[0]


def test_unknown_solver_config_keys_only_warn() -> None:
    body = cuopt.solve(_with(TINY_LP, "solver_config", {"time_limit": 5, "turbo": True}))
    assert body["response"]["solver_response"]["status"] == "Optimal"
    assert any("turbo" in w for w in body["warnings"])


def test_decoding_by_sniffing(tmp_path: Path) -> None:
    raw = json.dumps(TINY_LP).encode()
    assert decode_problem(raw) == TINY_LP
    assert decode_problem(b"\xef\xbb\xbf \n" + raw) == TINY_LP
    assert decode_problem(zlib.compress(raw)) == TINY_LP
    assert decode_problem(msgpack.packb(TINY_LP)) == TINY_LP
    assert decode_problem(zlib.compress(msgpack.packb(TINY_LP))) == TINY_LP
    marker = tmp_path / "unpickled"
    for payload in (pickle_tripwire(marker, protocol=2), zlib.compress(pickle_tripwire(marker))):
        with pytest.raises(CuOptError, match="pickle") as caught:
            decode_problem(payload)
        assert caught.value.status == 422
    assert not marker.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"{not json", "does not parse"),
        (zlib.compress(b"{}" * 100)[:-6], "truncated"),
        (b"\x78\x9c garbage", "does not decompress"),
        (b"\xc1\xc1\xc1", "neither JSON"),
    ],
)
def test_undecodable_assets_are_422(raw: bytes, message: str) -> None:
    with pytest.raises(CuOptError, match=message) as caught:
        decode_problem(raw)
    assert caught.value.status == 422


def test_decompression_is_bounded() -> None:
    bomb = zlib.compress(b"[" + b"0," * 500_000 + b"0]", 9)
    with pytest.raises(CuOptError, match="decompresses to more than"):
        decode_problem(bomb, max_bytes=100_000)
