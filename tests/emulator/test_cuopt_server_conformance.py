"""The official ``cuopt-sh-client==26.10.0``, unmodified, against the emulator's ``/cuopt`` API.

The client runs in its own virtualenv (``.venv-shclient``, ``make shclient``: it pins msgpack==1.2.1,
which clashes with the main environment); the session builds it when it is missing. Each test runs a
scenario of ``sh_client_scenarios.py`` with that venv's python against the shared legacy-mode
emulator over real sockets: LP, MILP (incumbents, logs), routing, a problem over 5 MB (and its
result written to the result directory), polling timeout then ``repoll``, status, delete, abort of a
running job, invalid input, JSON / zlib / msgpack / wildcard result types, zlib and pickle requests.
Optima are checked against independent computations, not the emulator's solver.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
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
    """The sh client venv's python, built with ``make shclient`` (uv, cached) when missing."""
    python = SHCLIENT / "bin" / "python"
    if not (SHCLIENT / ".installed-stamp").exists():
        make = shutil.which("make")
        if make is None:
            pytest.fail("the sh client venv is missing and there is no make to build it (make shclient)")
        subprocess.run([make, "-s", "shclient"], cwd=ROOT, check=True, timeout=600)
    return python


@pytest.fixture
def run_sh(sh_python: Path, cuopt_server_emulator: EmulatorProcess, tmp_path: Path) -> Callable[..., Any]:
    def run(scenario: str, problem: Any = None, env: dict[str, str] | None = None, **params: Any) -> Any:
        params["port"] = cuopt_server_emulator.cuopt_server_port
        if problem is not None:
            params["problem"] = str(tmp_path / "problem.json")
            Path(params["problem"]).write_text(json.dumps(problem))
        done = subprocess.run(
            [str(sh_python), str(SCENARIOS), scenario, json.dumps(params)],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, **(env or {})},
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


def check_tiny_lp(result: dict[str, Any]) -> None:
    assert result["class"] == "ThinClientSolution"
    assert result["status"] == "Optimal" and result["category"] == "LP"
    assert result["primal"] == pytest.approx([1.8, 0.0], abs=1e-6)
    assert result["objective"] == pytest.approx(-0.36, abs=1e-9)
    assert result["solved_by"]


@pytest.mark.parametrize("result_type", ["msgpack", "json", "zlib", "wildcard"])
def test_lp_in_every_result_type(run_sh, cuopt_server_emulator: EmulatorProcess, result_type: str) -> None:
    check_tiny_lp(run_sh("lp", TINY_LP, result_type=result_type))
    # The client deleted the solution after reading it (and the log): nothing is left on the server.
    assert cuopt_server_emulator.stats()["cuopt_server"]["jobs_live"] == 0


def test_zlib_request_body(run_sh, cuopt_server_emulator: EmulatorProcess) -> None:
    check_tiny_lp(run_sh("lp", TINY_LP, env={"CUOPT_USE_ZLIB": "true"}, result_type="zlib"))
    posts = [r for r in cuopt_server_emulator.requests_log() if r["route"] == "/cuopt/request"]
    assert posts[-1]["status"] == 200


def test_milp_with_incumbents_and_logs(run_sh) -> None:
    result = run_sh("milp_callbacks", KNAPSACK, result_type="json")
    assert result["status"] == "Optimal" and result["category"] in ("MIP", "IP")
    assert result["objective"] == pytest.approx(best_knapsack())
    picks = [round(x) for x in result["primal"]]
    assert sum(w * p for w, p in zip(WEIGHTS, picks)) <= 50
    assert sum(v * p for v, p in zip(VALUES, picks)) == best_knapsack()
    assert "mip_gap" in result["milp_stats"]
    assert any("HiGHS" in line for line in result["log_lines"]), result["log_lines"][:5]


def test_milp_incumbents_of_a_long_search(run_sh) -> None:
    result = run_sh("milp_callbacks", market_split_problem(time_limit=2))
    assert result["status"] == "FeasibleFound"
    assert result["incumbent_costs"], "no incumbent reached the client"
    assert result["incumbent_costs"] == sorted(result["incumbent_costs"], reverse=True)


def test_routing(run_sh) -> None:
    result = run_sh("routing", TINY_ROUTING)
    assert result["response"]["solver_response"]["solution_cost"] == pytest.approx(2.0)
    check_routing(TINY_ROUTING, result["response"]["solver_response"])


def test_problem_over_5_mb_with_result_file(
    run_sh, cuopt_server_emulator: EmulatorProcess, cuopt_result_dir: Path
) -> None:
    problem = lp_problem(200_000, 12_000)
    sent = len(msgpack.packb(problem))
    assert sent > 5 * 1024**2
    started = time.monotonic()
    result = run_sh("lp_dict", problem, kwargs={"output": "big.result"})
    elapsed = time.monotonic() - started
    # Over CUOPT_MAX_RESULT (1 MB here): the server wrote it to its result directory.
    assert result == {"result_file": "big.result", "format": "msgpack"}
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
    assert posts[-1]["content_length"] == sent
    print(f"\n  sent {sent:,} B msgpack, result file {path.stat().st_size:,} B, {elapsed:.1f} s")


def test_timeout_then_repoll(run_sh) -> None:
    result = run_sh("timeout_repoll", market_split_problem(time_limit=3), polling_timeout=0.5)
    assert set(result["pending"]) == {"reqId"}
    assert result["status_while_pending"] in ("queued", "running")
    assert result["reqId"] == result["pending"]["reqId"]
    assert result["status"] == "FeasibleFound" and result["category"] in ("MIP", "IP")


def test_status_and_delete(run_sh) -> None:
    result = run_sh("status_delete", TINY_LP)
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


def test_invalid_input_raises(run_sh) -> None:
    bad = {**TINY_LP, "variable_bounds": {"upper_bounds": [1.0], "lower_bounds": [0.0, 0.0]}}
    result = run_sh("invalid", bad)
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


def test_server_data_file_cache_and_validation(run_sh) -> None:
    check_tiny_lp(run_sh("data_file", path="problems/tiny_lp.json"))
    result = run_sh("cached", TINY_LP)
    assert set(result["cache"]) == {"reqId"}
    check_tiny_lp(result)
    validated = run_sh("validate", TINY_LP)
    assert "reqId" in validated and "response" in validated
