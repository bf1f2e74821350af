"""CuOptHook, operator and trigger under injected NVCF faults, over real sockets (ledger: docs/reliability.md)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider.events.cuopt import SolveEventStatus
from airflow_provider.exceptions import AmbiguousSubmissionError, RunFailedError
from airflow_provider.hooks.cuopt import CuOptHook
from airflow_provider.hooks.cuopt_problems import prepare_problem
from airflow_provider.operators.cuopt import CuOptSolveOperator
from airflow_provider.triggers.cuopt import CuOptSolveTrigger
from airflow_provider.utils.retry import RetryPolicy
from optimization_emulator.cuopt.generate import lp_problem, routing_problem

FAST = RetryPolicy(max_attempts=5, max_elapsed=60, initial_wait=0.05, max_wait=1.5)
INVOKE = {"method": "POST", "path_regex": "/v2/nvcf/exec/functions/"}
STATUS = {"method": "GET", "path_regex": "/v2/nvcf/exec/status/"}
ASSET_PUT = {"method": "PUT", "path_regex": "/_presigned/nvcf/assets/"}
RESULT_GET = {"method": "GET", "path_regex": "/_presigned/nvcf/results/"}


@pytest.fixture(scope="module")
def nvcf():
    """Results over 2 KB come as zips; requests stay pending 2 s; short-lived JWTs."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    args = ("--nvcf-max-inline-result", "2000", "--nvcf-queue-delay", "2")
    with EmulatorProcess(api_keys=("k-faults",), extra_args=args) as emu:
        yield emu


@pytest.fixture
def conns(nvcf, monkeypatch, cuopt_key_conn, client_conn_json):
    nvcf.reset()
    cuopt_key_conn(nvcf)
    monkeypatch.setenv("AIRFLOW_CONN_CUOPT_JWT", client_conn_json(nvcf))
    yield
    nvcf.clear_faults()


def stats(nvcf):
    return nvcf.stats()["nvcf"]


def faulted(nvcf):
    return sum(1 for r in nvcf.requests_log() if r.get("fault"))


def record(ledger, nvcf, fault, behaviour, **extra):
    """One ledger row: invocations NVCF saw, requests the fault hit, no duplicates."""
    extra.setdefault("retries", faulted(nvcf))
    extra.setdefault("secrets", ["k-faults"])
    invocations = stats(nvcf)["invocations"]
    ledger(fault, behaviour, runs=invocations, duplicates=max(invocations - 1, 0), **extra)


def hook(conn_id="cuopt_default"):
    return CuOptHook(conn_id, retry_policy=FAST, timeout=(5, 10))


def solve(h, problem, tmp_path, poll_seconds=1):
    with prepare_problem(problem) as prepared:
        invocation, asset_id = h.submit(prepared, h.resolve_function(), poll_seconds=poll_seconds)
    if invocation.pending:
        return h.wait_for_result(
            invocation.req_id, asset_id, str(tmp_path) + "/", deadline=time.time() + 60, poll_seconds=1
        )
    return h.outcome_event(invocation, asset_id, str(tmp_path) + "/")


SMALL = routing_problem(6, 2, seed=1, time_limit=1)


@pytest.mark.parametrize(("status", "extra"), [(429, {"retry_after": 1}), (503, {})], ids=["429", "503"])
def test_rejected_invocation_is_resent_safely(conns, nvcf, ledger, tmp_path, status, extra):
    nvcf.add_faults({"action": "status", "status": status, **extra, **INVOKE, "times": 2})
    event = solve(hook(), SMALL, tmp_path)
    assert event.status is SolveEventStatus.SUCCEEDED and stats(nvcf)["invocations"] == 1
    record(
        ledger,
        nvcf,
        f"HTTP {status} on the NVCF invocation",
        "re-sent: the request was not acted on",
    )


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"action": "drop", "process": True}, "answer lost after NVCF accepted it"),
        ({"action": "status", "status": 500, "process": True}, "500 after NVCF accepted it"),
    ],
    ids=["drop-processed", "500-processed"],
)
def test_ambiguous_invocation_fails_without_a_second_solve(
    conns, nvcf, ledger, context, tmp_path, fault, label
):
    nvcf.add_faults({**fault, **INVOKE})
    big = routing_problem(300, 12, seed=2, time_limit=1)  # asset path: the asset must not leak either
    op = CuOptSolveOperator(task_id="s", problem=big, output_uri=str(tmp_path) + "/", poll_seconds=1)
    with pytest.raises(AmbiguousSubmissionError, match="not sent again") as info:
        op.execute(context)
    time.sleep(0.5)
    assert stats(nvcf)["invocations"] == 1 and stats(nvcf)["assets_live"] == []
    record(
        ledger,
        nvcf,
        f"NVCF invocation: {label}",
        "fails without retries (no way to look the request up): never a second solve; asset deleted",
        retries=0,
        orphaned_assets=len(stats(nvcf)["assets_live"]),
        texts=[info.value],
    )


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "status", "status": 502, "times": 2, "label": "HTTP 502"},
        {"action": "status", "status": 504, "times": 2, "label": "HTTP 504"},
        {"action": "malformed", "times": 1, "label": "garbled answer"},
        {"action": "delay", "seconds": 20, "process": False, "label": "slower than the read timeout"},
    ],
    ids=["502", "504", "malformed", "slow"],
)
def test_status_poll_faults_are_retried(conns, nvcf, ledger, tmp_path, fault):
    fault = dict(fault)
    label = fault.pop("label")
    nvcf.add_faults({**fault, **STATUS})
    event = solve(hook(), SMALL, tmp_path)
    assert event.status is SolveEventStatus.SUCCEEDED
    record(
        ledger,
        nvcf,
        f"NVCF status poll: {label}",
        "retried (reads are idempotent)",
    )


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"action": "reset_upload"}, "connection reset mid-upload"),
        ({"action": "expire"}, "presigned URL expired"),
        ({"action": "status", "status": 503}, "storage answered 503"),
    ],
    ids=["reset", "expired", "503"],
)
def test_broken_asset_upload_gets_a_new_asset_and_leaks_none(conns, nvcf, ledger, tmp_path, fault, label):
    nvcf.add_faults({**fault, **ASSET_PUT})
    event = solve(hook(), routing_problem(300, 12, seed=3, time_limit=1), tmp_path)
    h = hook()
    h.finish(event)
    s = stats(nvcf)
    assert event.status is SolveEventStatus.SUCCEEDED and s["invocations"] == 1
    assert s["assets_created"] == 2 and s["assets_live"] == []
    record(
        ledger,
        nvcf,
        f"Asset upload: {label}",
        "new asset, upload restarted from the staged file, broken asset deleted",
        orphaned_assets=len(s["assets_live"]),
    )


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"action": "truncate"}, "zip cut short"),
        ({"action": "reset_download", "times": 2}, "connection reset mid-download"),
        ({"action": "status", "status": 500}, "storage answered 500"),
    ],
    ids=["truncated-zip", "reset", "500"],
)
def test_damaged_large_result_is_downloaded_again(conns, nvcf, ledger, tmp_path, fault, label):
    nvcf.add_faults({**fault, **RESULT_GET})
    event = solve(hook(), lp_problem(300, 40, seed=4), tmp_path)
    assert event.status is SolveEventStatus.SUCCEEDED and stats(nvcf)["large_results"] == 1
    result = json.loads((tmp_path / f"{event.req_id}.json").read_text())
    assert len(result["response"]["solver_response"]["solution"]["primal_solution"]) == 300
    record(
        ledger,
        nvcf,
        f"Large-result zip: {label}",
        "downloaded again (the URL stays valid); stored only when whole",
    )


def test_token_revoked_mid_run_is_renewed(conns, nvcf, ledger, tmp_path):
    nvcf.add_faults({"action": "expire_tokens", **STATUS})
    event = solve(hook("cuopt_jwt"), SMALL, tmp_path)
    assert event.status is SolveEventStatus.SUCCEEDED and stats(nvcf)["tokens_issued"] == 2
    record(
        ledger,
        nvcf,
        "JWT expires/revoked while the request is pending",
        "401 → new token → the poll succeeds",
        secrets=["k-faults", "emulator-secret"],
    )


def test_lost_result_fails_with_an_explanation(conns, nvcf, ledger, tmp_path):
    """NVCF hands a result out once: if that answer is lost in transit, nothing can fetch it again."""
    nvcf.add_faults({"action": "drop", "process": True, **STATUS, "times": 2})
    event = solve(hook(), SMALL, tmp_path)
    assert event.status is SolveEventStatus.FAILED
    assert "only once" in event.message
    with pytest.raises(RunFailedError, match="only once") as info:
        hook().finish(event)
    record(
        ledger,
        nvcf,
        "Status answer carrying the result lost in transit",
        "fails, saying the result was handed out once",
        texts=[info.value],
    )


def test_trigger_rides_out_faults_and_emits_one_event(conns, nvcf, ledger, tmp_path):
    h = hook()
    with prepare_problem(SMALL) as prepared:
        invocation, _ = h.submit(prepared, h.resolve_function(), poll_seconds=1)
    nvcf.add_faults(
        {"action": "status", "status": 502, **STATUS, "times": 2}, {"action": "malformed", **STATUS}
    )
    trigger = CuOptSolveTrigger(
        req_id=invocation.req_id, output_uri=str(tmp_path) + "/", end_time=time.time() + 60, poll_seconds=1
    )

    async def collect():
        return [e async for e in trigger.run()]

    events = asyncio.run(collect())
    assert [e.payload["status"] for e in events] == ["succeeded"]
    record(
        ledger,
        nvcf,
        "Trigger: 502s and a garbled answer while long-polling",
        "retried inside the trigger; exactly one event",
        texts=[json.dumps(e.payload) for e in events],
    )
