"""The built-in synthetic ``timer`` app: runs that take a set time, with no process behind them."""

from __future__ import annotations

import time

import pytest

RUNS = "/v1/applications/{}/runs"


def children_of(pid: int) -> set[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


def test_timer_succeeds_after_the_input_seconds_with_a_tiny_output(http):
    started = time.monotonic()
    run_id = http.new_run("timer", input={"seconds": 0.6})
    assert http.metadata("timer", run_id)["metadata"]["status_v2"] in ("queued", "running")
    meta = http.wait("timer", run_id)["metadata"]
    assert meta["status_v2"] == "succeeded", meta["error"]
    assert 0.6 <= time.monotonic() - started < 5
    assert meta["duration"] >= 600  # milliseconds from creation to the end
    output = http.request("GET", RUNS.format("timer") + f"/{run_id}/output")
    assert output.json() == {"status": "ok", "seconds": 0.6}
    assert "waiting 0.6 s" in http.logs("timer", run_id)


def test_duration_option_wins_over_the_input(http):
    run_id = http.new_run("timer", input={"seconds": 3600}, options={"duration": "300ms"})
    meta = http.wait("timer", run_id, timeout=10)["metadata"]
    assert meta["status_v2"] == "succeeded" and meta["duration"] >= 300


def test_fail_makes_the_run_fail_after_the_wait(http):
    run_id = http.new_run("timer", input={"seconds": 0.2, "fail": "synthetic failure"})
    meta = http.wait("timer", run_id)["metadata"]
    assert meta["status_v2"] == "failed" and meta["error"] == "synthetic failure"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": {"seconds": "soon"}}, "must be a number"),
        ({"input": {"seconds": -1}}, "between 0 and"),
        ({"input": [1, 2]}, "must be a JSON object"),
        ({"input": {}, "options": {"duration": "a while"}}, "option duration="),
    ],
)
def test_bad_settings_fail_the_run_with_a_clear_error(http, body, message):
    meta = http.wait("timer", http.new_run("timer", **body))["metadata"]
    assert meta["status_v2"] == "failed" and message in meta["error"]


def test_cancel_stops_the_wait(http):
    run_id = http.new_run("timer", input={"seconds": 600})
    http.wait_for_status("timer", run_id, "running")
    assert http.request("PATCH", RUNS.format("timer") + f"/{run_id}/cancel").status_code == 200
    assert http.metadata("timer", run_id)["metadata"]["status_v2"] == "canceled"


def test_a_big_uploaded_input_is_accepted_unread(http):
    big = b'{"seconds": 9999, "padding": "' + b"x" * (1024 * 1024) + b'"}'
    run_id = http.new_run("timer", upload_id=http.upload("timer", big))
    meta = http.wait("timer", run_id)["metadata"]  # not read: no 9999 s wait
    assert meta["status_v2"] == "succeeded" and meta["input_size"] == len(big)


def test_hundreds_of_timer_runs_start_no_process(start_emulator, http_client_for):
    emulator = start_emulator(extra_args=("--max-parallel-runs", "1000"))
    http = http_client_for(emulator)
    before = children_of(emulator.pid)
    run_ids = [http.new_run("timer", input={"seconds": 1.5}) for _ in range(300)]
    http.wait_for_status("timer", run_ids[-1], "running")
    assert children_of(emulator.pid) == before  # all 300 running, not one subprocess
    for run_id in run_ids:
        assert http.wait("timer", run_id, timeout=30)["metadata"]["status_v2"] == "succeeded"
    assert emulator.stats()["nextmv"]["runs_finished_by_status"] == {"succeeded": 300}
