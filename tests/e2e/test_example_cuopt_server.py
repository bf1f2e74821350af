"""``example_cuopt_server_milp`` end to end on a real Airflow stack against the emulator's
self-hosted cuOpt server API.

1. The example as shipped (connection ``cuopt_server_default``): the dag-processor parses it, the
   worker converts the MPS file with HiGHS and submits it once, the task defers, the *triggerer*
   polls and stores the result, the worker copies the solver log and deletes the job on the server,
   and ``report`` reads the stored file.
2. The same DAG on ``cuopt_server_slow`` (jobs stay queued ``CUOPT_SERVER_DELAY`` s; a gateway header
   with a secret), the triggerer SIGKILLed while the trigger waits and started again: the new
   triggerer takes the trigger over (same primitives, same request id) and the task completes with
   exactly one request at the server.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

DAG_ID = "example_cuopt_server_milp"
TASK = "solve_milp"


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.5)
    raise TimeoutError(what)


def _delta(before: dict, after: dict, key: str) -> int:
    return after["cuopt_server"][key] - before["cuopt_server"][key]


def _check_result(stack, run_id: str, work: Path) -> str:
    req_id = stack.xcom(DAG_ID, run_id, TASK, key="req_id")
    summary = stack.xcom(DAG_ID, run_id, "report")
    assert summary["status"] == "Optimal" and summary["objective"] == pytest.approx(-21.0), summary
    assert summary["chosen"] == ["X2", "X4"], summary
    path = work / run_id / "solution" / f"{req_id}.json"
    assert summary["result"] == str(path) and json.loads(path.read_text())["response"]
    return req_id


def test_example_runs_deferred_on_the_self_hosted_server(airflow_stack, e2e_emulator, tmp_path):
    stack, emulator, run_id = airflow_stack, e2e_emulator, "e2e-cuopt-server"
    work = tmp_path / "work"
    before = emulator.stats()
    run = stack.run_dag(DAG_ID, run_id, conf={"work_uri": str(work)}, timeout=240)
    assert run["state"] == "success", stack.failure_report(DAG_ID, run_id)
    after = emulator.stats()
    req_id = _check_result(stack, run_id, work)
    assert stack.trigger_log_paths(DAG_ID, run_id, TASK, -1), "the wait did not run in the triggerer"
    assert _delta(before, after, "requests_submitted") == 1
    assert _delta(before, after, "requests_deleted") == 1 and after["cuopt_server"]["jobs_live"] == 0
    assert req_id


def test_triggerer_sigkill_mid_wait_one_request(airflow_stack, slow_emulator, e2e_secrets, tmp_path):
    stack, emulator, run_id = airflow_stack, slow_emulator, "e2e-cuopt-server-triggerer-kill"
    work = tmp_path / "work"
    before = emulator.stats()
    stack.trigger_dag(DAG_ID, run_id, conf={"work_uri": str(work), "cuopt_conn_id": "cuopt_server_slow"})

    def deferred_with_trigger():
        states = stack.task_states(DAG_ID, run_id)
        if states.get(TASK) in ("success", "failed"):
            raise AssertionError(f"the task ended before the kill: {states}")
        if states.get(TASK) != "deferred":
            return None
        return stack.trigger_log_paths(DAG_ID, run_id, TASK, -1) or None

    try:
        old_logs = _wait(deferred_with_trigger, 150, "the task did not defer with a running trigger")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.failure_report(DAG_ID, run_id)}") from None
    assert emulator.stats()["cuopt_server"]["jobs_queued"] == 1  # the job is still waiting at the kill

    stack.kill_component("triggerer", signal.SIGKILL)
    time.sleep(1)
    assert stack.task_states(DAG_ID, run_id)[TASK] == "deferred"
    stack.start_component("triggerer")

    run = stack.wait_dag_run(DAG_ID, run_id, timeout=300)
    after = emulator.stats()
    assert run["state"] == "success", stack.failure_report(DAG_ID, run_id)
    new_logs = set(stack.trigger_log_paths(DAG_ID, run_id, TASK, -1)) - set(old_logs)
    assert new_logs, "no new triggerer job ran the trigger"
    _check_result(stack, run_id, work)
    assert _delta(before, after, "requests_submitted") == 1, after["cuopt_server"]
    assert _delta(before, after, "requests_deleted") == 1 and after["cuopt_server"]["jobs_live"] == 0
    requests_log = [r for r in emulator.requests_log() if r["path"].startswith("/cuopt/")]
    assert sum(1 for r in requests_log if r["method"] == "POST") == 1
    assert e2e_secrets.gateway_secret not in json.dumps(stack.xcom(DAG_ID, run_id, "report"))
