"""The official ``cuopt-sh-client==26.10.0``, unmodified, against the emulator's ``/cuopt`` API.

The client runs in its own virtualenv (``.venv-shclient``, ``make shclient``: it pins msgpack==1.2.1,
which clashes with the main environment); the session builds it when it is missing, and a failed
build fails these tests. Scenarios of ``sh_client_scenarios.py`` run with that venv's python against
the shared legacy-mode emulator over real sockets: LP in the msgpack / JSON / zlib / wildcard result
types, numpy arrays (numeric accepted, object arrays refused), MILP (incumbents, logs), routing, a
problem over 5 MB (its result written to the result directory), polling timeout then ``repoll``,
status, delete, abort of a running job, invalid input, server data files, cache and validation.
Most run in one client process (``batch``, a module fixture) and each test checks its own outcome;
scenarios that need their own process (environment read at import, an injected fault, the abort
handshake) run alone. Optima are checked against independent computations, not the emulator's solver.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from optimization_emulator.cuopt.decode import PICKLE_REFUSED
from optimization_emulator.cuopt.generate import lp_problem, market_split_problem
from optimization_emulator.testing.cuopt import TINY_LP, TINY_ROUTING, check_routing
from optimization_emulator.testing.emulator import EmulatorProcess

RESULT_TYPES = ("msgpack", "json", "zlib", "wildcard")
ROOT = Path(__file__).resolve().parents[2]
SHCLIENT = ROOT / ".venv-shclient"
SCENARIOS = Path(__file__).with_name("sh_client_scenarios.py")
#: A 12-item knapsack as a MILP: maximize value, weight <= 50, binary picks.
VALUES = [10, 13, 7, 8, 15, 4, 9, 11, 6, 12, 5, 14]
WEIGHTS = [7, 9, 4, 6, 11, 3, 5, 8, 4, 10, 2, 12]
KNAPSACK = {
    "csr_constraint_matrix": {"offsets": [0, 12], "indices": list(range(12)), "values": WEIGHTS},
    "constraint_bounds": {"upper_bounds": [50.0], "lower_bounds": ["ninf"]},
    "objective_data": {"coefficients": VALUES, "scalability_factor": 1.0, "offset": 0.0},
    "variable_bounds": {"upper_bounds": [1.0] * 12, "lower_bounds": [0.0] * 12},
    "variable_types": ["I"] * 12,
    "maximize": True,
}


def best_knapsack() -> float:
    return max(
        sum(v for v, p in zip(VALUES, picks) if p)
        for picks in itertools.product((0, 1), repeat=12)
        if sum(w for w, p in zip(WEIGHTS, picks) if p) <= 50
    )


@pytest.fixture(scope="session")
def sh_python() -> Path:
    """The sh client venv's python. ``make shclient`` (uv, cached) builds it when it is missing or
    older than its constraints, and is a no-op otherwise; a failed build fails the tests (never a
    skip: CI runs them from a fresh clone through ``make test``)."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is needed to build the sh client venv (make shclient)")
    done = subprocess.run([make, "-s", "shclient"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"make shclient failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return SHCLIENT / "bin" / "python"


def _params(tmp: Path, key: str, problem: Any = None, **params: Any) -> dict[str, Any]:
    if problem is not None:
        path = tmp / f"{key}.json"
        path.write_text(json.dumps(problem))
        params["problem"] = str(path)
    return params


def _run(sh_python: Path, port: int, scenario: str, params: dict[str, Any], env=None, timeout=180) -> Any:
    done = subprocess.run(
        [str(sh_python), str(SCENARIOS), scenario, json.dumps({**params, "port": port})],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@functools.cache
def big_problem() -> dict[str, Any]:
    """An LP whose msgpack body is over 5 MB (built once, when a test needs it)."""
    return lp_problem(200_000, 12_000)


@pytest.fixture(scope="module")
def batch(
    sh_python: Path, cuopt_server_emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The outcomes of most scenarios, run one after another by one client process."""
    tmp = tmp_path_factory.mktemp("sh-client")
    bad = {**TINY_LP, "variable_bounds": {"upper_bounds": [1.0], "lower_bounds": [0.0, 0.0]}}
    runs = {
        "installed": ("installed", {}),
        **{f"lp_{kind}": ("lp", _params(tmp, "tiny", TINY_LP, result_type=kind)) for kind in RESULT_TYPES},
        "numpy": ("numpy_arrays", _params(tmp, "tiny", TINY_LP)),
        "knapsack": ("milp_callbacks", _params(tmp, "knapsack", KNAPSACK, result_type="json")),
        "long_milp": ("milp_callbacks", _params(tmp, "split2", market_split_problem(time_limit=2))),
        "routing": ("routing", _params(tmp, "routing", TINY_ROUTING)),
        "big": ("lp_dict", _params(tmp, "big", big_problem(), kwargs={"output": "big.result"})),
        "timeout": (
            "timeout_repoll",
            _params(tmp, "split3", market_split_problem(time_limit=3), polling_timeout=0.5),
        ),
        "status_delete": ("status_delete", _params(tmp, "tiny", TINY_LP)),
        "invalid": ("invalid", _params(tmp, "bad", bad)),
        "data_file": ("data_file", {"path": "problems/tiny_lp.json"}),
        "cached": ("cached", _params(tmp, "tiny", TINY_LP)),
        "validate": ("validate", _params(tmp, "tiny", TINY_LP)),
    }
    return _run(sh_python, cuopt_server_emulator.cuopt_server_port, "batch", {"runs": runs}, timeout=280)


@pytest.fixture
def outcome(batch: dict[str, Any]) -> Callable[[str], Any]:
    def get(key: str) -> Any:
        value = batch[key]
        assert not (isinstance(value, dict) and "scenario_error" in value), value.get("scenario_error")
        return value

    return get


@pytest.fixture
def run_sh(sh_python: Path, cuopt_server_emulator: EmulatorProcess, tmp_path: Path) -> Callable[..., Any]:
    """One scenario in a client process of its own (``env``: read by the client at import)."""

    def run(scenario: str, problem: Any = None, env: dict[str, str] | None = None, **params: Any) -> Any:
        arguments = _params(tmp_path, "problem", problem, **params)
        return _run(sh_python, cuopt_server_emulator.cuopt_server_port, scenario, arguments, env)

    return run


def check_tiny_lp(result: dict[str, Any]) -> None:
    assert result["class"] == "ThinClientSolution"
    assert result["status"] == "Optimal" and result["category"] == "LP"
    assert result["primal"] == pytest.approx([1.8, 0.0], abs=1e-6)
    assert result["objective"] == pytest.approx(-0.36, abs=1e-9)
    assert result["solved_by"]


def test_the_client_is_the_unmodified_release(outcome) -> None:
    installed = outcome("installed")
    assert installed["version"] == "26.10.0"
    assert installed["files_checked"] > 5 and installed["changed"] == []


@pytest.mark.parametrize("result_type", RESULT_TYPES)
def test_lp_in_every_result_type(outcome, result_type: str) -> None:
    result = outcome(f"lp_{result_type}")
    check_tiny_lp(result)
    # The client deleted the solution after reading it: the id is unknown to the server now.
    assert result["status_after"]["type"] == "ValueError"
    assert f"404: job {result['reqId']} does not exist" in result["status_after"]["message"]


def test_zlib_request_body(run_sh, cuopt_server_emulator: EmulatorProcess) -> None:
    check_tiny_lp(run_sh("lp", TINY_LP, env={"CUOPT_USE_ZLIB": "true"}, result_type="zlib"))
    posts = [r for r in cuopt_server_emulator.requests_log() if r["route"] == "/cuopt/request"]
    assert posts[-1]["status"] == 200


def test_numpy_arrays_numeric_accepted_objects_refused(outcome) -> None:
    result = outcome("numpy")
    check_tiny_lp(result["numeric"])
    refused = result["objects"]
    assert refused["type"] == "ValueError" and "Unprocessable Entity - 422" in refused["message"]
    assert "object array" in refused["message"] and "pickle" in refused["message"]


def test_milp_with_incumbents_and_logs(outcome) -> None:
    result = outcome("knapsack")
    assert result["status"] == "Optimal" and result["category"] in ("MIP", "IP")
    assert result["objective"] == pytest.approx(best_knapsack())
    picks = [round(x) for x in result["primal"]]
    assert sum(w * p for w, p in zip(WEIGHTS, picks)) <= 50
    assert sum(v * p for v, p in zip(VALUES, picks)) == best_knapsack()
    assert "mip_gap" in result["milp_stats"]
    assert any("HiGHS" in line for line in result["log_lines"]), result["log_lines"][:5]


def test_milp_incumbents_of_a_long_search(outcome) -> None:
    result = outcome("long_milp")
    assert result["status"] == "FeasibleFound"
    assert result["incumbent_costs"], "no incumbent reached the client"
    assert result["incumbent_costs"] == sorted(result["incumbent_costs"], reverse=True)


def test_routing(outcome) -> None:
    result = outcome("routing")
    assert result["response"]["solver_response"]["solution_cost"] == pytest.approx(2.0)
    check_routing(TINY_ROUTING, result["response"])


def test_problem_over_5_mb_with_result_file(
    outcome, cuopt_server_emulator: EmulatorProcess, cuopt_result_dir: Path
) -> None:
    problem = big_problem()
    sent = len(msgpack.packb(problem))
    assert sent > 5 * 1024**2
    # Over CUOPT_MAX_RESULT (1 MB here): the server wrote it to its result directory.
    assert outcome("big") == {"result_file": "big.result", "format": "msgpack"}
    path = cuopt_result_dir / "big.result"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    envelope = msgpack.unpackb(path.read_bytes())
    solution = envelope["response"]["solver_response"]["solution"]
    assert envelope["response"]["solver_response"]["status"] == "Optimal"
    assert len(solution["primal_solution"]) == 200_000
    coefficients = problem["objective_data"]["coefficients"]
    objective = sum(c * x for c, x in zip(coefficients, solution["primal_solution"]))
    assert objective == pytest.approx(solution["primal_objective"], rel=1e-6)
    posts = [r for r in cuopt_server_emulator.requests_log() if r["route"] == "/cuopt/request"]
    assert sent in [r["content_length"] for r in posts]  # sent whole, as msgpack


def test_timeout_then_repoll(outcome) -> None:
    result = outcome("timeout")
    assert set(result["pending"]) == {"reqId"}
    assert result["status_while_pending"] in ("queued", "running")
    assert result["reqId"] == result["pending"]["reqId"]
    assert result["status"] == "FeasibleFound" and result["category"] in ("MIP", "IP")


def test_status_and_delete(outcome) -> None:
    result = outcome("status_delete")
    assert result["status"] == "completed"
    assert result["again"] == result["reqId"]  # reading a result does not consume it
    assert result["delete"] is None
    for key in ("status_after", "repoll_after"):
        assert result[key]["type"] == "ValueError"
        assert f"404: job {result['reqId']} does not exist" in result[key]["message"]
    assert result["abort_finished"] == {"queued": 0, "running": 0, "cached": 0}


def test_abort_a_running_job(
    sh_python: Path, cuopt_server_emulator: EmulatorProcess, tmp_path: Path, solver_pid, process_alive
) -> None:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(market_split_problem(time_limit=60)))
    params = {"port": cuopt_server_emulator.cuopt_server_port, "problem": str(path)}
    with subprocess.Popen(
        [str(sh_python), str(SCENARIOS), "abort", json.dumps(params)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        req_id = json.loads(process.stdout.readline())["reqId"]
        pid = solver_pid(cuopt_server_emulator, req_id)
        assert process_alive(pid)
        out, _ = process.communicate("go\n", timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["counts"] == {"queued": 0, "running": 1, "cached": 0}
    assert result["status"] == "aborted"
    assert result["repoll"]["type"] == "ValueError"
    assert f"500: {req_id} was aborted" in result["repoll"]["message"]
    deadline = time.monotonic() + 10
    while process_alive(pid):
        assert time.monotonic() < deadline, "the aborted job's solver process still runs"
        time.sleep(0.05)


def test_invalid_input_raises(outcome) -> None:
    result = outcome("invalid")
    assert result["lp"]["type"] == "ValueError" and "cuOpt Error" in result["lp"]["message"]
    assert "- 4" in result["lp"]["message"]  # a 4xx
    assert result["routing"]["type"] == "ValueError" and "- 4" in result["routing"]["message"]
    assert result["unknown_status"]["type"] == "ValueError"
    assert "404" in result["unknown_status"]["message"]


def test_pickle_body_is_refused(run_sh) -> None:
    result = run_sh("lp", TINY_LP, env={"CUOPT_PREFER_PICKLE": "true"}, expect_error=True)
    assert result["type"] == "ValueError"
    assert "Unsupported Media Type - 415" in result["message"]
    assert PICKLE_REFUSED in result["message"]


def test_injected_fault_reaches_the_client(run_sh, cuopt_server_emulator: EmulatorProcess) -> None:
    cuopt_server_emulator.add_faults(
        {"action": "status", "status": 503, "method": "POST", "route": "/cuopt/request"}
    )
    try:
        result = run_sh("lp", TINY_LP, expect_error=True)
    finally:
        cuopt_server_emulator.clear_faults()
    assert result["type"] == "ValueError"
    assert (
        "Service Unavailable - 503: Service Unavailable (a fault injected by the emulator)"
        in result["message"]
    )


def test_server_data_file_cache_and_validation(outcome) -> None:
    check_tiny_lp(outcome("data_file"))
    result = outcome("cached")
    assert set(result["cache"]) == {"reqId"}
    check_tiny_lp(result)
    validated = outcome("validate")
    assert "reqId" in validated and validated["response"] == {}
