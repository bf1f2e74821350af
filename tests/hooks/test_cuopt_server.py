"""CuOptServerHook against the emulator's self-hosted cuOpt server API over real sockets: solves,
wire format, errors, faults (reset mid-upload, 5xx, slow answers, a restart), lifecycle and logs."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from airflow_provider.events.cuopt import SolveEventStatus
from airflow_provider.exceptions import (
    AmbiguousSubmissionError,
    InvalidInputError,
    InvalidProblemError,
    ProtocolError,
    RequestGoneError,
    ServiceUnavailableError,
)
from airflow_provider.hooks.cuopt_problems import prepare_problem
from airflow_provider.hooks.cuopt_server import CuOptServerHook
from airflow_provider.protocol.cuopt_server import SubmitOptions
from airflow_provider.utils.retry import RetryPolicy
from optimization_emulator.testing.cuopt import TINY_LP, CuOptServerClient

SOLUTION_ROUTE = "/cuopt/solution/{req_id}"


def wide_lp(n: int) -> dict:
    """min -sum(x), 0 <= x <= 1, sum(x) <= n: optimal x = 1; answers grow with ``n``."""
    return {
        "csr_constraint_matrix": {"offsets": [0, n], "indices": list(range(n)), "values": [1.0] * n},
        "constraint_bounds": {"upper_bounds": [float(n)], "lower_bounds": ["ninf"]},
        "objective_data": {"coefficients": [-1.0] * n, "scalability_factor": 1.0, "offset": 0.0},
        "variable_bounds": {"upper_bounds": [1.0] * n, "lower_bounds": [0.0] * n},
        "maximize": False,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Jobs stay queued for 1 s, so waits really wait and aborts find a job to stop."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    log = tmp_path_factory.mktemp("cuopt-server") / "emulator.log"
    with EmulatorProcess(extra_args=("--cuopt-server-queue-delay", "1"), log_path=log) as emu:
        yield emu


@pytest.fixture
def conn(server, cuopt_server_point):
    server.reset()
    return cuopt_server_point(server, "cuopt_server_hooks")


def solve(hook, problem, output, *, timeout=120.0):
    with prepare_problem(problem) as prepared:
        answer, asset = hook.submit(prepared)
    assert asset is None and answer.pending
    return hook.wait_for_result(
        answer.req_id, None, str(output), deadline=time.time() + timeout, poll_seconds=2
    )


def client(server):
    return CuOptServerClient(server.cuopt_server_url)


def test_test_connection_answers_health(conn, server, cuopt_server_point, monkeypatch):
    ok, message = CuOptServerHook(conn).test_connection()
    assert ok and "running" in message and server.cuopt_server_url in message
    monkeypatch.setenv(
        "AIRFLOW_CONN_CUOPT_SERVER_DOWN",
        json.dumps({"conn_type": "cuopt_server", "host": "127.0.0.1", "port": 9}),
    )
    down = CuOptServerHook("cuopt_server_down", retry_policy=RetryPolicy(max_attempts=1))
    ok, message = down.test_connection()
    assert not ok and "cuOpt server" in message


def test_inline_lp_is_solved_stored_then_deleted(conn, server, tmp_path):
    hook = CuOptServerHook(conn)
    event = solve(hook, TINY_LP, tmp_path / "lp.json")
    assert event.status is SolveEventStatus.SUCCEEDED, event.message
    stored = json.loads((tmp_path / "lp.json").read_text())
    assert stored["response"]["solver_response"]["status"] == "Optimal"
    assert stored["response"]["solver_response"]["solution"]["primal_solution"] == pytest.approx([1.8, 0.0])
    assert hook.finish(event) == [str(tmp_path / "lp.json")]
    assert client(server).solution(event.req_id).status_code == 404  # deleted after storing
    log = server.requests_log()
    (post,) = [r for r in log if r["method"] == "POST" and r["path"] == "/cuopt/request"]
    assert post["content_length"] == len(json.dumps(TINY_LP, separators=(",", ":")))
    assert post["query"]["solver_logs"] == "False" and post["query"]["validation_only"] == "False"
    assert not any(r["authorization"] for r in log if r["path"].startswith("/cuopt"))


def test_large_problem_goes_zlib_and_large_result_is_streamed(conn, server, tmp_path):
    hook = CuOptServerHook(conn)
    problem = wide_lp(150_000)
    event = solve(hook, problem, str(tmp_path / "out") + "/")
    assert event.status is SolveEventStatus.SUCCEEDED, event.message
    path = tmp_path / "out" / f"{event.req_id}.json"
    assert event.output_paths == (str(path),)
    assert path.stat().st_size > 1024 * 1024  # above the poll cap: streamed, not read whole
    solution = json.loads(path.read_text())["response"]["solver_response"]["solution"]
    assert solution["primal_objective"] == pytest.approx(-150_000)
    (post,) = [r for r in server.requests_log() if r["method"] == "POST" and r["path"] == "/cuopt/request"]
    assert post["content_length"] < len(json.dumps(problem, separators=(",", ":"))) / 5  # compressed


def test_invalid_problem_fails_permanently(conn, server, tmp_path):
    hook = CuOptServerHook(conn)
    bad = {**TINY_LP, "variable_bounds": {"upper_bounds": [1.0], "lower_bounds": [0.0, 0.0]}}
    event = solve(hook, bad, tmp_path / "bad.json")
    assert event.status is SolveEventStatus.FAILED and event.req_id in event.message
    with pytest.raises(InvalidProblemError, match="failed"):
        hook.finish(event)
    assert not (tmp_path / "bad.json").exists()


def test_validation_only_succeeds_without_solving(conn, server, tmp_path):
    hook = CuOptServerHook(conn, options=SubmitOptions.of(validation_only=True))
    event = solve(hook, TINY_LP, tmp_path / "v.json")
    assert event.status is SolveEventStatus.SUCCEEDED, event.message
    assert "Input is valid" in (tmp_path / "v.json").read_text()
    assert server.stats()["cuopt_server"]["validations"] == 1


def test_msgpack_answer_is_refused_without_decoding(conn, server, tmp_path):
    hook = CuOptServerHook(conn)
    with prepare_problem(TINY_LP) as prepared:
        answer, _ = hook.submit(prepared)
    server.add_faults(
        {
            "action": "status",
            "status": 200,
            "route": SOLUTION_ROUTE,
            "content_type": "application/vnd.msgpack",
            "body": "\u0081\u00a5reqId\u00a1x",
        }
    )
    with pytest.raises(ProtocolError, match="vnd.msgpack.*never decoded"):
        hook.poll(answer.req_id)


def test_5xx_on_polls_is_retried(conn, server, tmp_path):
    server.add_faults(
        {"action": "status", "status": 503, "method": "GET", "route": SOLUTION_ROUTE, "times": 2}
    )
    event = solve(CuOptServerHook(conn), TINY_LP, tmp_path / "r.json")
    assert event.status is SolveEventStatus.SUCCEEDED
    assert server.faults()[0]["hits"] == 2


def test_upload_reset_midway_is_sent_again_once(conn, server, tmp_path, capfd):
    """The body must outgrow the socket buffers (else every byte is "sent" before the reset): an
    incompressible extra field makes the zlib body ~30 MB."""
    server.add_faults(
        {"action": "reset_upload", "route": "/cuopt/request", "after_bytes": 64 * 1024, "times": 1}
    )
    problem = {**TINY_LP, "padding": base64.b64encode(os.urandom(30 * 1024 * 1024)).decode()}
    solve(CuOptServerHook(conn), problem, tmp_path / "big.json")  # solved or refused: either way, once
    assert "broke after" in capfd.readouterr().out
    assert server.stats()["cuopt_server"]["requests_submitted"] == 1
    assert server.faults()[0]["hits"] == 1


def test_500_after_the_whole_body_is_not_sent_again(conn, server, tmp_path):
    server.add_faults(
        {"action": "status", "status": 500, "method": "POST", "route": "/cuopt/request", "process": True}
    )
    hook = CuOptServerHook(conn)
    with (
        prepare_problem(TINY_LP) as prepared,
        pytest.raises(AmbiguousSubmissionError, match="not sent again"),
    ):
        hook.submit(prepared)
    assert server.stats()["cuopt_server"]["requests_submitted"] == 1


def test_slow_answer_is_cut_by_the_call_bound_and_retried(conn, server, tmp_path):
    server.add_faults({"action": "delay", "seconds": 6, "method": "GET", "route": SOLUTION_ROUTE, "times": 1})
    hook = CuOptServerHook(conn, timeout=(2, 2, 3))
    event = solve(hook, TINY_LP, tmp_path / "slow.json")
    assert event.status is SolveEventStatus.SUCCEEDED


def test_deadline_gives_timeout_and_finish_aborts_the_job(conn, server, tmp_path):
    hook = CuOptServerHook(conn)
    event = solve(hook, wide_lp(10), tmp_path / "t.json", timeout=0.3)  # still queued (1 s)
    assert event.status is SolveEventStatus.TIMEOUT
    with pytest.raises(Exception, match="did not finish in time"):
        hook.finish(event)
    assert server.stats()["cuopt_server"]["requests_aborted"] == 1
    assert client(server).solution(event.req_id).status_code == 404


def test_cancel_aborts_a_queued_job(conn, server):
    hook = CuOptServerHook(conn)
    with prepare_problem(TINY_LP) as prepared:
        answer, _ = hook.submit(prepared)
    hook.cancel(answer.req_id)
    failed = hook.poll(answer.req_id)
    assert failed.status.value == "failed" and "aborted" in failed.message


def test_keep_on_server_keeps_the_solution(conn, server, tmp_path):
    hook = CuOptServerHook(conn, keep_on_server=True)
    event = solve(hook, TINY_LP, tmp_path / "k.json")
    hook.finish(event)
    assert client(server).solution(event.req_id).status_code == 200


def test_solver_log_goes_to_the_task_log(conn, server, tmp_path, capfd):
    hook = CuOptServerHook(conn, options=SubmitOptions.of(solver_logs=True))
    event = solve(hook, TINY_LP, tmp_path / "l.json")
    hook.finish(event)
    out = capfd.readouterr().out
    assert "cuOpt solver log:" in out
    assert server.stats()["cuopt_server"]["log_reads"] >= 1


def test_gateway_header_is_sent(server, cuopt_server_point, tmp_path):
    server.reset()
    conn = cuopt_server_point(
        server, "cuopt_server_gw", auth_header_name="Authorization", password="Bearer gw-s3cret"
    )
    event = solve(CuOptServerHook(conn), TINY_LP, tmp_path / "g.json")
    assert event.status is SolveEventStatus.SUCCEEDED
    assert all(r["authorization"] for r in server.requests_log() if r["path"].startswith("/cuopt"))


def test_404_after_a_server_restart(cuopt_server_point, tmp_path):
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(extra_args=("--cuopt-server-queue-delay", "30")) as emu:
        conn = cuopt_server_point(emu, "cuopt_server_restart")
        hook = CuOptServerHook(conn)
        with prepare_problem(TINY_LP) as prepared:
            answer, _ = hook.submit(prepared)
        emu.restart()
        with pytest.raises(RequestGoneError, match="restarted"):
            hook.poll(answer.req_id)
        event = hook.wait_for_result(
            answer.req_id, None, str(tmp_path / "x.json"), deadline=time.time() + 10, poll_seconds=1
        )
        assert event.status is SolveEventStatus.ERROR  # not stored: a retry of the task submits again
        with pytest.raises(ServiceUnavailableError, match="does not know"):
            hook.finish(event)


def test_result_file_from_the_shared_directory(cuopt_server_point, tmp_path):
    from optimization_emulator.testing.emulator import EmulatorProcess

    results = tmp_path / "results"
    results.mkdir()
    args = ("--cuopt-server-result-dir", str(results), "--cuopt-server-max-result", "0")
    with EmulatorProcess(extra_args=args) as emu:
        shared = CuOptServerHook(cuopt_server_point(emu, "cuopt_server_files", result_dir=str(results)))
        event = solve(shared, TINY_LP, tmp_path / "f.json")
        assert event.status is SolveEventStatus.SUCCEEDED, event.message
        assert (
            json.loads((tmp_path / "f.json").read_text())["response"]["solver_response"]["status"]
            == "Optimal"
        )
        unshared = CuOptServerHook(cuopt_server_point(emu, "cuopt_server_noshare"))
        with pytest.raises(InvalidInputError, match="result_dir"):
            solve(unshared, TINY_LP, tmp_path / "n.json")
