"""NextmvHook under injected faults (the emulator's fault rules), over real sockets.

Each scenario is recorded in the reliability ledger (docs/reliability.md): how many runs the
service created, how many retries it took, and that there were no duplicates and no leaked secrets.
"""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider.events.nextmv import RunEventStatus
from airflow_provider.exceptions import ServiceHTTPError
from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.protocol.nextmv import task_marker
from airflow_provider.utils.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=5, max_elapsed=60, initial_wait=0.05, max_wait=0.5)
MIB = 1024 * 1024
RUNS = "/v1/applications/{app}/runs"
METADATA = "/v1/applications/{app}/runs/{run}/metadata"


@pytest.fixture
def hook(nextmv_conn, emulator):
    emulator.reset()  # also clears fault rules
    h = NextmvHook(nextmv_conn, retry_policy=FAST, timeout=(5, 5))
    yield h
    h.close()
    emulator.clear_faults()


def faulted(emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r.get("fault"))


def created(emulator) -> int:
    return emulator.stats()["nextmv"]["runs_created"]


def record(ledger, emulator, fault, behaviour, **extra):
    """One ledger row: what the service created, how many requests the fault hit, no duplicates."""
    extra.setdefault("retries", faulted(emulator))
    runs = created(emulator)
    ledger(
        fault,
        behaviour,
        runs=runs,
        duplicates=max(runs - 1, 0),
        secrets=[emulator.api_key],
        **extra,
    )


def finish(hook, app, run_id):
    return hook.wait_for_run(app, run_id, deadline=time.time() + 60, poll_interval=0.1, max_poll_interval=0.3)


def submit(hook, **kw):
    return hook.submit_run(
        "echo", task_marker=task_marker("dag", "task", "run-" + str(time.monotonic_ns())), **kw
    )


def test_429_with_retry_after_on_status_polls(hook, emulator, ledger):
    hook.retry_policy = RetryPolicy(max_attempts=5, max_elapsed=60, initial_wait=0.05, max_wait=5)
    run_id = submit(hook, input={"a": 1})
    emulator.add_faults({"action": "status", "status": 429, "retry_after": 1, "route": METADATA, "times": 2})
    started = time.monotonic()
    assert finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    assert time.monotonic() - started >= 2  # Retry-After honoured
    record(
        ledger,
        emulator,
        "429 + Retry-After on status polls",
        "retried after the advertised delay",
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_status_polls(hook, emulator, ledger, status):
    run_id = submit(hook, input={"a": 1})
    emulator.add_faults({"action": "status", "status": status, "route": METADATA, "times": 3})
    assert finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    record(
        ledger,
        emulator,
        f"HTTP {status} on status polls",
        "retried with backoff and jitter",
    )


def test_persistent_5xx_fails_clearly_after_a_bounded_number_of_attempts(hook, emulator, ledger):
    run_id = submit(hook, input={"a": 1})
    emulator.add_faults({"action": "status", "status": 502, "route": METADATA, "times": -1})
    with pytest.raises(ServiceHTTPError, match="HTTP 502") as info:
        hook.get_run_metadata("echo", run_id)
    assert faulted(emulator) == FAST.max_attempts
    record(
        ledger,
        emulator,
        "HTTP 502 that never ends",
        "fails after 5 attempts with the status and the service's text",
        retries=faulted(emulator) - 1,
        texts=[info.value],
    )


def test_503_on_create_run_is_resent_safely(hook, emulator, ledger):
    emulator.add_faults({"action": "status", "status": 503, "route": RUNS, "method": "POST", "times": 2})
    run_id = submit(hook, input={"a": 1})
    assert finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    assert created(emulator) == 1
    record(
        ledger,
        emulator,
        "503 on POST /runs (not processed)",
        "re-sent: 503 means the request was not acted on",
    )


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"action": "status", "status": 500, "process": True}, "500 after the run was created"),
        ({"action": "drop", "process": True}, "response lost after the run was created"),
        ({"action": "delay", "seconds": 8, "stage": "response"}, "answer slower than the client timeout"),
        ({"action": "malformed", "process": True}, "garbled answer after the run was created"),
    ],
    ids=["500-processed", "drop-processed", "timeout-processed", "malformed-processed"],
)
def test_ambiguous_create_run_adopts_the_run_instead_of_duplicating(hook, emulator, ledger, fault, label):
    emulator.add_faults({**fault, "route": RUNS, "method": "POST"})
    run_id = submit(hook, input={"a": 1})
    assert created(emulator) == 1
    (mine,) = [
        r for r in hook.list_runs("echo") if r["id"] == run_id
    ]  # the run that exists is the one returned
    assert finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    record(
        ledger,
        emulator,
        f"POST /runs: {label}",
        "looks the submission up by its marker and adopts the run",
    )


def test_request_dropped_before_processing_is_sent_again(hook, emulator, ledger):
    emulator.add_faults({"action": "drop", "process": False, "route": RUNS, "method": "POST"})
    run_id = submit(hook, input={"a": 1})
    assert created(emulator) == 1 and finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    record(
        ledger,
        emulator,
        "POST /runs dropped before it was processed",
        "no run carries the marker: sent once more",
    )


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"action": "reset_upload", "after_bytes": 3 * MIB}, "connection reset mid-upload"),
        ({"action": "expire"}, "presigned upload URL expired"),
        ({"action": "status", "status": 500}, "storage answered 500"),
    ],
    ids=["reset", "expired", "500"],
)
def test_broken_upload_restarts_from_the_source(hook, emulator, ledger, json_file, fault, label):
    src = json_file(6 * MIB)
    emulator.add_faults({**fault, "method": "PUT", "path_regex": "/uploads/"})
    run_id = submit(hook, input_uri=str(src))
    assert finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    stats = emulator.stats()["nextmv"]
    assert stats["uploads"] == 1 and stats["upload_bytes"] == 6 * MIB and created(emulator) == 1
    record(
        ledger,
        emulator,
        f"Upload: {label}",
        "new upload URL, upload restarted from the source's first byte",
    )


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"action": "reset_download", "times": 2}, "connection reset mid-download"),
        ({"action": "expire"}, "presigned download URL expired"),
        ({"action": "truncate"}, "body cut short"),
    ],
    ids=["reset", "expired", "truncated"],
)
def test_broken_download_restarts_and_never_leaves_a_partial_file(
    hook, emulator, ledger, json_file, tmp_path, fault, label
):
    src = json_file(6 * MIB)
    run_id = submit(hook, input_uri=str(src))
    assert finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    emulator.add_faults({**fault, "method": "GET", "path_regex": "/_presigned/.*/output"})
    paths = hook.download_output("echo", run_id, str(tmp_path / "out.json"))
    assert (tmp_path / "out.json").read_bytes() == src.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name != src.name] == ["out.json"]  # no .partial leftovers
    record(
        ledger,
        emulator,
        f"Download: {label}",
        "restarted with a fresh URL; file renamed into place only when complete",
        texts=paths,
    )


def test_slow_and_garbled_status_answers_are_retried(hook, emulator, ledger):
    run_id = submit(hook, input={"a": 1})
    emulator.add_faults(
        {"action": "delay", "seconds": 8, "route": METADATA},
        {"action": "malformed", "route": METADATA},
        {"action": "truncate", "route": METADATA},
    )
    assert finish(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    record(
        ledger,
        emulator,
        "Status poll: slower than the read timeout, garbled, truncated",
        "each retried as a transient read failure",
    )


def test_faults_never_put_the_api_key_or_signatures_into_errors(hook, emulator, ledger, json_file):
    src = json_file(6 * MIB)
    emulator.add_faults({"action": "reset_upload", "method": "PUT", "path_regex": "/uploads/", "times": -1})
    with pytest.raises(Exception) as info:
        submit(hook, input_uri=str(src))
    message = str(info.value)
    assert "upload" in message.lower()
    record(
        ledger,
        emulator,
        "Upload keeps failing",
        "fails after 3 whole-transfer attempts; the message has no URL signature",
        retries=faulted(emulator) - 1,
        texts=[message, json.dumps(message)],
    )
