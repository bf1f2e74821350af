"""Reliability end to end: Airflow components die while solves are in flight, on a real stack.

The promise: whatever Airflow does, a solve finishes with the right output or fails with an error
that says why — never a duplicate run, never a leaked asset. Two scenarios, each on the
``tests/e2e/dags/e2e_reliability.py`` DAGs against the *slow* emulator (Nextmv runs end when the
test opens their gate, NVCF requests stay pending 25 s), whose counters only these tests move:

* the **triggerer** is SIGKILLed while 10 Nextmv runs and 2 cuOpt requests wait in deferred tasks;
  a new triggerer takes the triggers over (once the dead one's heartbeat is older than
  ``[triggerer] triggerer_health_check_threshold``, 10 s here), the runs end only then, and every
  task ends with its output, each remote run submitted exactly once;
* a **worker** (the task process) is SIGKILLed between submission and completion — sync Nextmv,
  deferrable Nextmv before it defers, sync cuOpt with an input asset — and the retry re-attaches
  to the run the dead try started (its log says so) instead of submitting another.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from airflow_provider.protocol.nextmv import task_marker
from optimization_emulator.testing.cuopt import check_routing

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

T = TypeVar("T")
APP = "gated"
N_DEFERRED_RUNS = 10  # as in the DAG file
_MARKER = re.compile(r"\[airflow-task ([0-9a-f]{16}) submission ([0-9a-f]{12})\]")


# ------------------------------------------------------------------------------------------ helpers
def _wait(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} (after {timeout:.0f} s)")
        time.sleep(interval)


def _delta(before: dict, after: dict, api: str, key: str) -> int:
    return after[api][key] - before[api][key]


def _app_delta(before: dict, after: dict) -> int:
    return after["nextmv"]["runs_created_by_app"].get(APP, 0) - before["nextmv"]["runs_created_by_app"].get(
        APP, 0
    )


def _assert_nvcf_clean(before: dict, after: dict, *, invocations: int, assets: int) -> None:
    """Exactly ``invocations`` requests, each result handed out once; every asset created deleted."""
    nvcf = after["nvcf"]
    assert _delta(before, after, "nvcf", "invocations") == invocations, nvcf
    assert _delta(before, after, "nvcf", "results_delivered") == invocations, nvcf
    assert _delta(before, after, "nvcf", "assets_created") == assets, nvcf
    assert _delta(before, after, "nvcf", "assets_deleted") == assets, nvcf
    assert nvcf["assets_live"] == [], nvcf
    assert nvcf["requests_pending"] == 0, nvcf


def _nextmv_get(emulator: Any, path: str) -> requests.Response:
    return requests.get(
        f"{emulator.url}/v1/applications/{APP}{path}",
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=10,
    )


def _runs_by_task(emulator: Any) -> dict[str, list[dict]]:
    """Every run of the app on the emulator, grouped by the Airflow task marker in its description."""
    response = _nextmv_get(emulator, "/runs")
    response.raise_for_status()
    grouped: dict[str, list[dict]] = {}
    for run in response.json()["runs"]:
        match = _MARKER.search(str(run.get("description") or ""))
        grouped.setdefault(match.group(1) if match else "(no marker)", []).append(run)
    return grouped


def _run_status(emulator: Any, run_id: str) -> str:
    response = _nextmv_get(emulator, f"/runs/{run_id}/metadata")
    response.raise_for_status()
    return response.json()["metadata"]["status_v2"]


def _job_id(trigger_log: Path) -> str:
    """``attempt=1.log.trigger.<job id>.log`` -> the triggerer job that wrote it."""
    return trigger_log.name.split(".log.trigger.", 1)[1].removesuffix(".log")


def _read_logs(paths: list[Path]) -> str:
    return "\n".join(p.read_text(errors="replace") for p in paths)


def _kill_task_process(pid: int) -> None:
    """SIGKILL the task process whose pid the test DAG reported (after checking it is an Airflow task)."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    assert "airflow" in cmdline or "python" in cmdline, f"pid {pid} is not a task process: {cmdline!r}"
    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def routing_problem_uri(tmp_path_factory) -> str:
    """A routing problem of about 560 KB: over NVCF's inline limit, so it travels as an asset."""
    from optimization_emulator.cuopt.generate import routing_problem

    path = tmp_path_factory.mktemp("cuopt-problem") / "problem.json"
    path.write_text(json.dumps(routing_problem(200, 10, seed=3, time_limit=2)))
    assert path.stat().st_size > 250_000
    return str(path)


# --------------------------------------------------------------------------- 1. triggerer SIGKILL
TRIGGERER_DAG = "e2e_triggerer_restart"
TRIGGERER_RUN = "e2e-triggerer-restart"


def test_triggerer_sigkill_new_triggerer_takes_over(
    airflow_stack, slow_emulator, nextmv_gate, routing_problem_uri, tmp_path
):
    stack, emulator = airflow_stack, slow_emulator
    work = tmp_path / "work"
    tasks = [("nextmv", i) for i in range(N_DEFERRED_RUNS)] + [("cuopt_inline", -1), ("cuopt_asset", -1)]
    before, t0 = emulator.stats(), time.monotonic()
    stack.trigger_dag(
        TRIGGERER_DAG, TRIGGERER_RUN, conf={"work_dir": str(work), "problem_uri": routing_problem_uri}
    )

    # every task deferred, and its trigger runs in the current triggerer (its log file exists)
    def all_deferred() -> dict[tuple[str, int], list[Path]] | None:
        if stack.dag_run(TRIGGERER_DAG, TRIGGERER_RUN)["state"] in ("success", "failed"):
            raise AssertionError("the run ended before every task deferred: the solves were too fast")
        states = {
            (ti["task_id"], ti["map_index"]): ti["state"]
            for ti in stack.task_instances(TRIGGERER_DAG, TRIGGERER_RUN)
        }
        if any(states.get(task) != "deferred" for task in tasks):
            return None
        logs = {task: stack.trigger_log_paths(TRIGGERER_DAG, TRIGGERER_RUN, *task) for task in tasks}
        return logs if all(logs.values()) else None

    try:
        old_logs = _wait(all_deferred, 150, "not every task deferred with a running trigger")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.failure_report(TRIGGERER_DAG, TRIGGERER_RUN)}") from None
    t_deferred = time.monotonic()
    old_jobs = {_job_id(p) for paths in old_logs.values() for p in paths}
    assert len(old_jobs) == 1, old_jobs
    run_ids = {
        i: stack.xcom(TRIGGERER_DAG, TRIGGERER_RUN, "nextmv", key="run_id", map_index=i)
        for i in range(N_DEFERRED_RUNS)
    }
    unfinished_at_kill = sum(_run_status(emulator, r) in ("queued", "running") for r in run_ids.values())
    pending_at_kill = emulator.stats()["nvcf"]["requests_pending"]

    # SIGKILL the triggerer (its whole process group: the trigger runner dies with it)
    stack.kill_component("triggerer", signal.SIGKILL)
    t_kill = time.monotonic()
    time.sleep(1)
    states = stack.task_states(TRIGGERER_DAG, TRIGGERER_RUN)
    assert set(states.values()) == {"deferred"}, states  # nothing notices a dead triggerer by itself
    stack.start_component("triggerer")
    t_restarted = time.monotonic()

    # the new triggerer runs every trigger (a log file of a new job per task); only then do runs end
    def taken_over() -> bool | None:
        for task in tasks:
            paths = stack.trigger_log_paths(TRIGGERER_DAG, TRIGGERER_RUN, *task)
            if not any(_job_id(p) not in old_jobs for p in paths):
                return None
        return True

    _wait(taken_over, 90, "the new triggerer did not take every trigger over")
    t_taken_over = time.monotonic()
    nextmv_gate.open()

    run = stack.wait_dag_run(TRIGGERER_DAG, TRIGGERER_RUN, timeout=240)
    t_done = time.monotonic()
    after = emulator.stats()
    assert run["state"] == "success", stack.failure_report(TRIGGERER_DAG, TRIGGERER_RUN)
    print(
        f"\ntriggerer restart: all {len(tasks)} deferred after {t_deferred - t0:.1f} s; at the kill "
        f"{unfinished_at_kill}/{N_DEFERRED_RUNS} Nextmv runs unfinished, {pending_at_kill} NVCF requests "
        f"pending; new triggerer healthy {t_restarted - t_kill:.1f} s and running every trigger "
        f"{t_taken_over - t_kill:.1f} s after the kill; run done "
        f"{t_done - t_kill:.1f} s after the kill ({t_done - t0:.1f} s in all)"
    )
    assert (unfinished_at_kill, pending_at_kill) == (N_DEFERRED_RUNS, 2), "solves ended before the kill"

    tis = {(ti["task_id"], ti["map_index"]): ti for ti in stack.task_instances(TRIGGERER_DAG, TRIGGERER_RUN)}
    assert {task: tis[task]["state"] for task in tasks} == dict.fromkeys(tasks, "success")
    assert {task: tis[task]["try_number"] for task in tasks} == dict.fromkeys(tasks, 1)  # no retry was needed

    # each trigger was taken over: exactly one event per task, fired by a *new* triggerer job
    for task in tasks:
        paths = stack.trigger_log_paths(TRIGGERER_DAG, TRIGGERER_RUN, *task)
        fired = [
            (p, line) for p in paths for line in p.read_text().splitlines() if "Trigger fired event" in line
        ]
        assert len(fired) == 1, (task, [p.name for p in paths], fired)
        assert _job_id(fired[0][0]) not in old_jobs, (task, fired[0][0].name, old_jobs)

    # Nextmv: exactly one run per task (10 in all), each succeeded, each output is that run's output
    assert _app_delta(before, after) == N_DEFERRED_RUNS, after["nextmv"]
    by_task = _runs_by_task(emulator)
    for i in range(N_DEFERRED_RUNS):
        marker = task_marker(TRIGGERER_DAG, "nextmv", TRIGGERER_RUN, i)
        assert [r["id"] for r in by_task.get(marker, [])] == [run_ids[i]], (i, by_task.get(marker))
        assert _run_status(emulator, run_ids[i]) == "succeeded"
        assert stack.xcom(TRIGGERER_DAG, TRIGGERER_RUN, "nextmv", map_index=i) == run_ids[i]
        paths = stack.xcom(TRIGGERER_DAG, TRIGGERER_RUN, "nextmv", key="output_paths", map_index=i)
        assert paths == [str(work / "nextmv" / f"{run_ids[i]}.json")], paths
        assert json.loads(Path(paths[0]).read_text()) == {"index": i, "payload": f"deferred run {i}"}

    # cuOpt: one invocation per task, results stored, the input asset deleted, nothing pending
    _assert_nvcf_clean(before, after, invocations=2, assets=1)
    assert _delta(before, after, "nvcf", "tokens_issued") >= 1, after["nvcf"]  # client credentials
    problem = json.loads(Path(routing_problem_uri).read_text())
    for task_id in ("cuopt_inline", "cuopt_asset"):
        req_id = stack.xcom(TRIGGERER_DAG, TRIGGERER_RUN, task_id)
        paths = stack.xcom(TRIGGERER_DAG, TRIGGERER_RUN, task_id, key="output_paths")
        assert paths == [str(work / task_id / f"{req_id}.json")], paths
        result = json.loads(Path(paths[0]).read_text())
        if task_id == "cuopt_asset":
            check_routing(problem, result["response"])
        else:
            assert result["response"]["solver_response"]["status"] == 0, result


# ----------------------------------------------------------------------------- 2. worker SIGKILL
WORKER_DAG = "e2e_worker_kill"
WORKER_RUN = "e2e-worker-kill"
KILLED_TASKS = ("nextmv_sync", "nextmv_deferrable", "cuopt_sync")


def _assert_remote_in_flight(emulator: Any, task_id: str, info: dict) -> None:
    """Before the kill: the emulator shows the run / request (and its asset) the task just submitted."""
    if task_id.startswith("nextmv"):
        assert _run_status(emulator, info["run_id"]) in ("queued", "running"), info
        return
    asset = requests.get(
        f"{emulator.nvcf_url}/assets/{info['asset_id']}",
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=10,
    )
    assert asset.status_code == 200, asset.text
    assert emulator.stats()["nvcf"]["requests_pending"] >= 1


def test_worker_sigkill_retry_reattaches(
    airflow_stack, slow_emulator, nextmv_gate, routing_problem_uri, tmp_path
):
    stack, emulator = airflow_stack, slow_emulator
    work, signals = tmp_path / "work", tmp_path / "signals"
    before, t0 = emulator.stats(), time.monotonic()
    conf = {"work_dir": str(work), "signal_dir": str(signals), "problem_uri": routing_problem_uri}
    stack.trigger_dag(WORKER_DAG, WORKER_RUN, conf=conf)

    # kill each task process as soon as it has submitted (and, for the deferrable one, before it defers)
    submitted: dict[str, dict] = {}
    killed_at: dict[str, float] = {}

    def kill_when_submitted() -> bool | None:
        for task_id in KILLED_TASKS:
            path = signals / f"{task_id}.try1.submitted.json"
            if task_id in killed_at or not path.exists():
                continue
            info = json.loads(path.read_text())
            _assert_remote_in_flight(emulator, task_id, info)
            _kill_task_process(info["pid"])
            submitted[task_id], killed_at[task_id] = info, time.monotonic()
        return True if len(killed_at) == len(KILLED_TASKS) else None

    try:
        _wait(kill_when_submitted, 120, "not every task reported its submission", interval=0.2)
    except TimeoutError as exc:
        raise AssertionError(
            f"{exc}: {sorted(killed_at)}\n{stack.failure_report(WORKER_DAG, WORKER_RUN)}"
        ) from None

    # the gated Nextmv runs end once both retries have come back to them (or submitted anew: a bug)
    def retried() -> bool | None:
        for task_id in ("nextmv_sync", "nextmv_deferrable"):
            logs = stack.task_log_paths(WORKER_DAG, WORKER_RUN, task_id)
            text = logs[1].read_text() if len(logs) > 1 else ""
            if "Re-attaching" not in text and "Created Nextmv run" not in text:
                return None
        return True

    try:
        _wait(retried, 90, "the Nextmv tasks did not start a second try")
    finally:
        nextmv_gate.open()
    t_released = time.monotonic()
    run = stack.wait_dag_run(WORKER_DAG, WORKER_RUN, timeout=240)
    t_done = time.monotonic()
    after = emulator.stats()
    assert run["state"] == "success", stack.failure_report(WORKER_DAG, WORKER_RUN)
    tis = {ti["task_id"]: ti for ti in stack.task_instances(WORKER_DAG, WORKER_RUN)}
    print(
        "\nworker kill: "
        + "; ".join(f"{t} killed {killed_at[t] - t0:.1f} s after the trigger" for t in KILLED_TASKS)
        + f"; Nextmv retries re-attached {t_released - t0:.1f} s and the run done {t_done - t0:.1f} s"
        " after the trigger"
    )

    for task_id in KILLED_TASKS:
        ti, info = tis[task_id], submitted[task_id]
        # the first try died, the second succeeded, without submitting anything
        assert (ti["state"], ti["try_number"]) == ("success", 2), ti
        assert not (signals / f"{task_id}.try2.submitted.json").exists(), f"{task_id}: try 2 submitted again"
        logs = stack.task_log_paths(WORKER_DAG, WORKER_RUN, task_id)
        assert [p.name for p in logs] == ["attempt=1.log", "attempt=2.log"], logs
        first, second = logs[0].read_text(), logs[1].read_text()
        assert "Created Nextmv run" in first or "accepted (" in first, first[-3000:]
        remote_id = info.get("run_id") or info["req_id"]
        assert "Re-attaching" in second and remote_id in second, second[-3000:]
        # and the submission log lines of the hooks are absent from the second try
        assert "Created Nextmv run" not in second and "accepted (" not in second, second[-3000:]
        assert stack.xcom(WORKER_DAG, WORKER_RUN, task_id) == remote_id

    # the deferrable task deferred on its second try, and its trigger fired once
    second = stack.task_log_paths(WORKER_DAG, WORKER_RUN, "nextmv_deferrable")[1].read_text()
    assert "Pausing task as DEFERRED" in second, second[-3000:]
    trigger_logs = _read_logs(stack.trigger_log_paths(WORKER_DAG, WORKER_RUN, "nextmv_deferrable"))
    assert trigger_logs.count("Trigger fired event") == 1, trigger_logs[-3000:]

    # Nextmv: exactly one run per task, the one the first try submitted, and its output
    assert _app_delta(before, after) == 2, after["nextmv"]
    by_task = _runs_by_task(emulator)
    for task_id in ("nextmv_sync", "nextmv_deferrable"):
        run_id = submitted[task_id]["run_id"]
        marker = task_marker(WORKER_DAG, task_id, WORKER_RUN)
        assert [r["id"] for r in by_task.get(marker, [])] == [run_id], (task_id, by_task.get(marker))
        assert _run_status(emulator, run_id) == "succeeded"
        paths = stack.xcom(WORKER_DAG, WORKER_RUN, task_id, key="output_paths")
        assert paths == [str(work / task_id / f"{run_id}.json")], paths
        assert json.loads(Path(paths[0]).read_text()) == {"scenario": task_id}

    # cuOpt: one invocation, one asset created and deleted, the result stored and valid
    _assert_nvcf_clean(before, after, invocations=1, assets=1)
    req_id = submitted["cuopt_sync"]["req_id"]
    paths = stack.xcom(WORKER_DAG, WORKER_RUN, "cuopt_sync", key="output_paths")
    assert paths == [str(work / "cuopt_sync" / f"{req_id}.json")], paths
    check_routing(
        json.loads(Path(routing_problem_uri).read_text()), json.loads(Path(paths[0]).read_text())["response"]
    )
