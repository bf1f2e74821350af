"""The sync wait (worker) and the deferrable wait (trigger) end the same way on the same faults.

Issue 8: a large-result zip cut short once was downloaded again by the sync wait and lost by the
trigger. Both paths now share every decision (``hooks/cuopt_results.py`` retrieval, one event schema,
one ``finish``); here each fault is injected into a fresh solve per mode, over real sockets, and the
two outcomes — event status, and the stored files' content — must be equal.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus
from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus
from airflow_provider.hooks.cuopt import CuOptHook
from airflow_provider.hooks.cuopt_problems import prepare_problem
from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.triggers.cuopt import CuOptSolveTrigger
from airflow_provider.triggers.nextmv import NextmvRunTrigger
from airflow_provider.utils.retry import RetryPolicy
from optimization_emulator.cuopt.generate import lp_problem

FAST = RetryPolicy(max_attempts=5, max_elapsed=60, initial_wait=0.05, max_wait=1)
NVCF_STATUS = {"method": "GET", "path_regex": "/v2/nvcf/exec/status/"}
NVCF_RESULT = {"method": "GET", "path_regex": "/_presigned/nvcf/results/"}
NEXTMV_METADATA = {"method": "GET", "path_regex": "/runs/[^/]+/metadata"}
NEXTMV_OUTPUT = {"method": "GET", "path_regex": "/_presigned/.*/output"}

FAULTS = {
    "5xx": {"action": "status", "status": 502, "times": 2},
    "reset": {"action": "drop", "process": False, "times": 1},
    "slow": {"action": "delay", "seconds": 3, "times": 1},
}


def first_event(trigger) -> dict:
    async def run():
        return [e.payload async for e in trigger.run()]

    (payload,) = asyncio.run(asyncio.wait_for(run(), 120))
    return payload


def contents(paths: list[str]) -> list[object]:
    return [json.loads(Path(p).read_text()) for p in paths]


# ----------------------------------------------------------------------------------------- cuOpt
@pytest.fixture(scope="module")
def nvcf():
    """Results over 2 KB come as zips; requests stay pending 2 s (so the waits poll)."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    args = ("--nvcf-max-inline-result", "2000", "--nvcf-queue-delay", "2")
    with EmulatorProcess(api_keys=("k-parity",), extra_args=args) as emu:
        yield emu


@pytest.fixture
def cuopt(nvcf, cuopt_key_conn):
    nvcf.reset()
    cuopt_key_conn(nvcf)
    hook = CuOptHook(retry_policy=FAST, timeout=(5, 10))
    yield hook
    hook.close()
    nvcf.clear_faults()


def cuopt_solve(hook: CuOptHook, nvcf, fault: dict, output: Path, *, deferrable: bool):
    """Submit a problem with a zipped result, inject ``fault``, wait in one mode, finish."""
    with prepare_problem(lp_problem(300, 40, seed=4)) as prepared:
        invocation, asset_id = hook.submit(prepared, hook.resolve_function(), poll_seconds=1)
    assert invocation.pending
    nvcf.clear_faults()
    nvcf.add_faults(fault)
    output.mkdir()
    if deferrable:
        payload = first_event(
            CuOptSolveTrigger(
                req_id=invocation.req_id,
                asset_id=asset_id,
                output_uri=str(output) + "/",
                end_time=time.time() + 90,
                poll_seconds=1,
            )
        )
        event = CuOptSolveEvent.from_payload(payload)
    else:
        event = hook.wait_for_result(
            invocation.req_id, asset_id, str(output) + "/", deadline=time.time() + 90, poll_seconds=1
        )
    paths = hook.finish(event)
    return event.status, [
        p["response"]["solver_response"]["solution"]["primal_objective"] for p in contents(paths)
    ]


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "truncate", "times": 1, **NVCF_RESULT},
        {"action": "reset_download", "times": 1, **NVCF_RESULT},
        {**FAULTS["5xx"], **NVCF_STATUS},
        {**FAULTS["reset"], **NVCF_STATUS},
        {**FAULTS["slow"], **NVCF_STATUS},
    ],
    ids=["zip-cut-short", "zip-reset", "status-5xx", "status-reset", "status-slow"],
)
def test_cuopt_sync_and_deferrable_end_the_same(cuopt, nvcf, tmp_path, fault):
    sync = cuopt_solve(cuopt, nvcf, fault, tmp_path / "sync", deferrable=False)
    faulted_sync = sum(1 for r in nvcf.requests_log() if r.get("fault"))
    deferred = cuopt_solve(cuopt, nvcf, fault, tmp_path / "deferred", deferrable=True)
    faulted_deferred = sum(1 for r in nvcf.requests_log() if r.get("fault"))
    assert 1 <= faulted_sync < faulted_deferred  # the fault really hit each path
    assert sync == deferred
    assert sync[0] is SolveEventStatus.SUCCEEDED and len(sync[1]) == 1


# ----------------------------------------------------------------------------------------- Nextmv
@pytest.fixture
def nextmv(nextmv_conn, emulator):
    emulator.reset()
    hook = NextmvHook(nextmv_conn, retry_policy=FAST, timeout=(5, 10))
    yield hook
    hook.close()
    emulator.clear_faults()


def nextmv_solve(hook: NextmvHook, emulator, fault: dict, source: Path, output: Path, *, deferrable: bool):
    run_id = hook.submit_run("echo", input_uri=str(source))
    emulator.clear_faults()
    emulator.add_faults(fault)
    if deferrable:
        payload = first_event(
            NextmvRunTrigger(
                app_id="echo",
                run_id=run_id,
                end_time=time.time() + 90,
                poll_interval=0.2,
                max_poll_interval=0.5,
            )
        )
        event = NextmvRunEvent.from_payload(payload)
    else:
        event = hook.wait_for_run(
            "echo", run_id, deadline=time.time() + 90, poll_interval=0.2, max_poll_interval=0.5
        )
    paths = hook.finish(event, output_uri=str(output))
    return event.status, [Path(p).read_bytes() == source.read_bytes() for p in paths]


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "truncate", "times": 1, **NEXTMV_OUTPUT},
        {"action": "reset_download", "times": 1, **NEXTMV_OUTPUT},
        {**FAULTS["5xx"], **NEXTMV_METADATA},
        {**FAULTS["reset"], **NEXTMV_METADATA},
        {**FAULTS["slow"], **NEXTMV_METADATA},
    ],
    ids=["output-cut-short", "output-reset", "status-5xx", "status-reset", "status-slow"],
)
def test_nextmv_sync_and_deferrable_end_the_same(nextmv, emulator, json_file, tmp_path, fault):
    source = json_file(6 * 1024 * 1024)  # > 5 MiB: uploaded, and the output comes back presigned
    sync = nextmv_solve(nextmv, emulator, fault, source, tmp_path / "sync.json", deferrable=False)
    deferred = nextmv_solve(nextmv, emulator, fault, source, tmp_path / "deferred.json", deferrable=True)
    assert sum(1 for r in emulator.requests_log() if r.get("fault")) >= 2  # hit in both modes
    assert sync == deferred == (RunEventStatus.SUCCEEDED, [True])
