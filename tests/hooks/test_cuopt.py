"""CuOptHook against the emulator's NVCF API over real sockets."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider.events.cuopt import SolveEventStatus
from airflow_provider.exceptions import (
    CredentialsError,
    InvalidInputError,
    RequestGoneError,
    RunFailedError,
    ServiceHTTPError,
)
from airflow_provider.hooks.cuopt import CuOptHook
from airflow_provider.hooks.cuopt_problems import prepare_problem
from airflow_provider.protocol.cuopt import InvocationStatus
from optimization_emulator.cuopt.generate import lp_problem, routing_problem

TINY_LP = {
    "csr_constraint_matrix": {"offsets": [0, 2, 4], "indices": [0, 1, 0, 1], "values": [3.0, 4.0, 2.7, 10.1]},
    "constraint_bounds": {"upper_bounds": [5.4, 4.9], "lower_bounds": ["ninf", "ninf"]},
    "objective_data": {"coefficients": [-0.2, 0.1], "scalability_factor": 1.0, "offset": 0.0},
    "variable_bounds": {"upper_bounds": ["inf", "inf"], "lower_bounds": [0.0, 0.0]},
    "maximize": False,
}


def nvcf(emulator) -> dict:
    return emulator.stats()["nvcf"]


def solve(hook, output_uri, *, problem=None, problem_uri=None, poll_seconds=10, timeout=120):
    """Invoke, then wait in the worker: what the operator does in sync mode."""
    function = hook.resolve_function()
    with prepare_problem(problem, problem_uri) as prepared:
        invocation, asset_id = hook.submit(prepared, function, poll_seconds=poll_seconds)
    if invocation.pending:
        return hook.wait_for_result(
            invocation.req_id, asset_id, output_uri, deadline=time.time() + timeout, poll_seconds=poll_seconds
        )
    return hook.outcome_event(invocation, asset_id, output_uri)


@pytest.fixture
def hook(cuopt_conn, emulator):
    emulator.reset()
    h = CuOptHook(cuopt_conn)
    yield h
    h.close()


def test_function_chosen_like_the_thin_client(hook):
    fid, vid = hook.resolve_function()
    functions = [f for f in hook.list_functions() if f["status"] == "ACTIVE"]
    newest = max(functions, key=lambda f: f["createdAt"])
    assert (fid, vid) == (newest["id"], newest["versionId"])
    assert hook.resolve_function(version_id=functions[0]["versionId"]) == (fid, functions[0]["versionId"])
    with pytest.raises(InvalidInputError, match="No ACTIVE"):
        hook.resolve_function(function_name="not-cuopt")


def test_tiny_lp_inline_is_solved_exactly(hook, emulator, tmp_path):
    event = solve(hook, str(tmp_path / "lp.json"), problem=TINY_LP)
    assert event.status is SolveEventStatus.SUCCEEDED and event.asset_id is None
    result = json.loads((tmp_path / "lp.json").read_text())
    solution = result["response"]["solver_response"]["solution"]
    assert solution["primal_solution"] == pytest.approx([1.8, 0.0], abs=1e-6)
    assert solution["primal_objective"] == pytest.approx(-0.36, abs=1e-6)
    assert nvcf(emulator)["assets_created"] == 0 and nvcf(emulator)["invocations"] == 1


def test_large_problem_goes_as_compressed_asset_and_the_asset_is_deleted(hook, emulator, tmp_path):
    problem = routing_problem(300, 12, seed=3, time_limit=2)
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(problem))
    assert path.stat().st_size > 250_000
    event = solve(hook, str(tmp_path / "out") + "/", problem_uri=str(path))
    assert event.status is SolveEventStatus.SUCCEEDED, event
    assert hook.finish(event) == [str(tmp_path / "out" / f"{event.req_id}.json")]
    stats = nvcf(emulator)
    assert stats["assets_created"] == 1 and stats["assets_deleted"] == 1 and not stats["assets_live"]
    puts = [r for r in emulator.requests_log() if r["method"] == "PUT"]
    assert len(puts) == 1 and puts[0]["authorization"] is False
    assert int(puts[0]["content_length"]) < path.stat().st_size  # zlib-compressed on the way
    routes = json.loads((tmp_path / "out" / f"{event.req_id}.json").read_text())["response"][
        "solver_response"
    ]
    served = [
        t
        for v in routes["vehicle_data"].values()
        for t, kind in zip(v["task_id"], v["type"], strict=True)
        if kind != "Depot"
    ]
    assert sorted(map(int, served)) == list(range(300))


def test_large_result_arrives_as_a_zip(cuopt_conn, tmp_path, json_file):
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(api_keys=("k-zip",), extra_args=("--nvcf-max-inline-result", "2000")) as emu:
        conn = {
            "conn_type": "cuopt",
            "host": emu.url,
            "password": "k-zip",
            "extra": {"function_name": "cuopt"},
        }
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_CONN_CUOPT_ZIP", json.dumps(conn))
            event = solve(
                CuOptHook("cuopt_zip"), str(tmp_path / "r.json"), problem=lp_problem(200, 50, seed=1)
            )
        assert event.status is SolveEventStatus.SUCCEEDED
        assert emu.stats()["nvcf"]["large_results"] == 1
        downloads = [
            r for r in emu.requests_log() if r["method"] == "GET" and "presigned" in (r["route"] or "")
        ]
        assert downloads and all(r["authorization"] is False for r in downloads)
    result = json.loads((tmp_path / "r.json").read_text())
    assert len(result["response"]["solver_response"]["solution"]["primal_solution"]) == 200


def test_result_is_handed_out_once(hook, tmp_path):
    event = solve(hook, str(tmp_path / "a.json"), problem=TINY_LP)
    with pytest.raises(RequestGoneError, match="only once"):
        hook.poll(event.req_id, 1)


def test_pending_then_polled_to_completion(tmp_path):
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(api_keys=("k-q",), extra_args=("--nvcf-queue-delay", "3")) as emu:
        conn = {"conn_type": "cuopt", "host": emu.url, "password": "k-q", "extra": {"function_name": "cuopt"}}
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_CONN_CUOPT_Q", json.dumps(conn))
            hook = CuOptHook("cuopt_q")
            with prepare_problem(TINY_LP) as prepared:
                first, _ = hook.submit(prepared, hook.resolve_function(), poll_seconds=1)
            assert first.status is InvocationStatus.PENDING_EVALUATION
            event = hook.wait_for_result(
                first.req_id, None, str(tmp_path / "x.json"), deadline=time.time() + 60, poll_seconds=1
            )
        assert event.status is SolveEventStatus.SUCCEEDED
        assert emu.stats()["nvcf"]["status_polls"] >= 1


def test_client_credentials_token_is_reused_while_fresh(emulator, cuopt_client_conn, tmp_path):
    emulator.reset()
    hook = CuOptHook(cuopt_client_conn)
    solve(hook, str(tmp_path / "a.json"), problem=TINY_LP)
    solve(hook, str(tmp_path / "b.json"), problem=TINY_LP)
    assert nvcf(emulator)["tokens_issued"] == 1


def test_token_that_expires_while_pending_is_renewed(tmp_path, client_conn_json):
    from optimization_emulator.testing.emulator import EmulatorProcess

    args = ("--token-ttl", "8", "--nvcf-queue-delay", "11")  # refreshed 2 s (ttl/4) ahead
    with EmulatorProcess(api_keys=("k-t",), extra_args=args) as emu:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_CONN_CUOPT_T", client_conn_json(emu))
            event = solve(CuOptHook("cuopt_t"), str(tmp_path / "t.json"), problem=TINY_LP, poll_seconds=1)
        assert event.status is SolveEventStatus.SUCCEEDED
        assert emu.stats()["nvcf"]["tokens_issued"] >= 2
        assert not [r for r in emu.requests_log() if r["status"] == 401]  # refreshed *before* expiry


def test_infeasible_routing_fails_with_the_result_kept(hook, tmp_path):
    problem = routing_problem(10, 1, seed=2, time_limit=1)
    problem["fleet_data"]["capacities"] = [[1]]  # total demand far above one small vehicle
    event = solve(hook, str(tmp_path / "inf.json"), problem=problem)
    assert event.status is SolveEventStatus.INFEASIBLE
    with pytest.raises(RunFailedError, match="infeasible") as info:
        hook.finish(event)
    assert event.req_id in str(info.value)
    assert (tmp_path / "inf.json").exists()


def test_malformed_problem_errors_and_asset_is_still_deleted(hook, emulator, tmp_path):
    bad = lp_problem(20_000, 10, seed=0)
    bad["csr_constraint_matrix"]["offsets"] = [0, 5]  # inconsistent with the matrix
    event = solve(hook, str(tmp_path / "bad.json"), problem=bad)
    assert event.status is SolveEventStatus.FAILED and event.asset_id
    with pytest.raises(RunFailedError, match=f"request {event.req_id}, asset {event.asset_id}"):
        hook.finish(event)
    assert not nvcf(emulator)["assets_live"]


def test_invalid_input_fails_before_any_call(hook, emulator, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        with prepare_problem(problem_uri=str(bad)):
            pass
    big_bad = tmp_path / "big.csv"
    big_bad.write_text("a,b\n" * 100_000)
    with pytest.raises(InvalidInputError, match="not JSON"):
        with prepare_problem(problem_uri=str(big_bad)):
            pass
    with pytest.raises(InvalidInputError, match="does not exist"):
        with prepare_problem(problem_uri=str(tmp_path / "missing.json")):
            pass


def test_credentials_errors(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CUOPT_NONE", json.dumps({"conn_type": "cuopt", "host": emulator.url}))
    with pytest.raises(CredentialsError, match="no credentials"):
        CuOptHook("cuopt_none").resolve_function()
    monkeypatch.setenv(
        "AIRFLOW_CONN_CUOPT_BAD",
        json.dumps({"conn_type": "cuopt", "host": emulator.url, "password": "nope-nope"}),
    )
    with pytest.raises(ServiceHTTPError, match="401") as info:
        CuOptHook("cuopt_bad").list_functions()
    assert "nope-nope" not in str(info.value)


def test_wrong_client_secret(emulator, monkeypatch, client_conn_json):
    monkeypatch.setenv("AIRFLOW_CONN_CUOPT_WS", client_conn_json(emulator, secret="wrong-secret"))
    with pytest.raises(ServiceHTTPError, match="401"):
        CuOptHook("cuopt_ws").list_functions()


def test_test_connection(hook):
    ok, message = hook.test_connection()
    assert ok and "function version" in message


def test_compact_problem_under_250_kb_is_sent_inline_byte_for_byte(hook, emulator, tmp_path):
    """The 250,000-byte inline rule measures compact JSON; the invocation carries exactly those bytes."""
    n = 11_500
    problem = {
        "csr_constraint_matrix": {"offsets": [0, n], "indices": list(range(n)), "values": [1.0] * n},
        "constraint_bounds": {"upper_bounds": [float(n)], "lower_bounds": [1.0]},
        "objective_data": {"coefficients": [float(i % 7 + 1) for i in range(n)]},
        "variable_bounds": {"upper_bounds": [1.0] * n, "lower_bounds": [0.0] * n},
        "maximize": False,
    }
    compact = len(json.dumps(problem, separators=(",", ":")))
    assert 200_000 < compact <= 250_000 < len(json.dumps(problem))
    event = solve(hook, str(tmp_path) + "/", problem=problem)
    assert event.status is SolveEventStatus.SUCCEEDED and event.asset_id is None
    (invoke,) = [
        r for r in emulator.requests_log() if r["method"] == "POST" and "/exec/functions/" in r["path"]
    ]
    assert compact < int(invoke["content_length"]) < compact + 512
    result = json.loads(open(event.output_paths[0]).read())
    assert result["response"]["solver_response"]["solution"]["primal_objective"] == pytest.approx(
        1.0, abs=1e-6
    )
