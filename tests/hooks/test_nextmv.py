"""NextmvHook against the emulator over real sockets: inline and upload submission, waits, output."""

from __future__ import annotations

import json
import os
import time

import pytest

from airflow_provider.events.nextmv import RunEventStatus
from airflow_provider.exceptions import (
    CredentialsError,
    InvalidInputError,
    RunFailedError,
    RunTimeoutError,
    ServiceHTTPError,
)
from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.protocol.nextmv import MAX_INLINE_BYTES, RunStatus

MIB = 1024 * 1024


def wait(hook, app, run_id, timeout=60):
    return hook.wait_for_run(
        app, run_id, deadline=time.time() + timeout, poll_interval=0.1, max_poll_interval=0.5
    )


@pytest.fixture
def hook(nextmv_conn, emulator):
    emulator.reset()
    h = NextmvHook(nextmv_conn)
    yield h
    h.close()


def service_requests(emulator):
    """Requests the provider made (the emulator also logs the test's own admin calls)."""
    return [r for r in emulator.requests_log() if not r["path"].startswith("/_emulator")]


def presigned(emulator):
    return [r for r in emulator.requests_log() if "presigned" in (r.get("route") or r.get("path") or "")]


def test_small_dict_goes_inline_and_output_lands_in_a_file(hook, emulator, tmp_path):
    run_id = hook.submit_run("echo", input={"hello": "world", "n": [1, 2, 3]}, name="inline")
    assert wait(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    paths = hook.download_output("echo", run_id, str(tmp_path / "out.json"))
    assert paths == [str(tmp_path / "out.json")]
    assert json.loads((tmp_path / "out.json").read_text()) == {"hello": "world", "n": [1, 2, 3]}
    stats = emulator.stats()["nextmv"]
    assert stats["uploads"] == 0 and stats["runs_created"] == 1


def test_large_file_is_streamed_to_the_presigned_url_without_the_api_key(hook, emulator, json_file, tmp_path):
    src = json_file(MAX_INLINE_BYTES + 1)
    run_id = hook.submit_run("echo", input_uri=str(src))
    assert wait(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    stats = emulator.stats()["nextmv"]
    assert stats["uploads"] == 1 and stats["upload_bytes"] == MAX_INLINE_BYTES + 1
    puts = [r for r in presigned(emulator) if r["method"] == "PUT"]
    assert len(puts) == 1 and puts[0]["authorization"] is False
    assert int(puts[0]["content_length"]) == MAX_INLINE_BYTES + 1
    # the > 5 MiB output comes back through format=url, again without the API key
    paths = hook.download_output("echo", run_id, str(tmp_path) + "/")
    assert paths == [str(tmp_path / f"{run_id}.json")]
    assert os.path.getsize(paths[0]) == MAX_INLINE_BYTES + 1
    gets = [r for r in presigned(emulator) if r["method"] == "GET"]
    assert len(gets) == 1 and gets[0]["authorization"] is False


def test_exactly_5_mib_stays_inline(hook, emulator, json_file):
    src = json_file(MAX_INLINE_BYTES)
    run_id = hook.submit_run("sink", input_uri=str(src))
    assert wait(hook, "sink", run_id).status is RunEventStatus.SUCCEEDED
    assert emulator.stats()["nextmv"]["uploads"] == 0


def test_large_dict_input_is_uploaded(hook, emulator):
    big = {"padding": "x" * (MAX_INLINE_BYTES + 10)}
    run_id = hook.submit_run("sink", input=big)
    assert wait(hook, "sink", run_id).status is RunEventStatus.SUCCEEDED
    assert emulator.stats()["nextmv"]["uploads"] == 1


def test_s3_input_and_s3_output(hook, emulator, s3, json_file, tmp_path):
    src = json_file(6 * MIB)
    s3.upload_file(str(src), s3.bucket, "inputs/problem.json")
    run_id = hook.submit_run("echo", input_uri=f"s3://{s3.bucket}/inputs/problem.json")
    assert wait(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    assert emulator.stats()["nextmv"]["upload_bytes"] == 6 * MIB
    paths = hook.download_output("echo", run_id, f"s3://{s3.bucket}/solutions/")
    assert paths == [f"s3://{s3.bucket}/solutions/{run_id}.json"]
    body = s3.get_object(Bucket=s3.bucket, Key=f"solutions/{run_id}.json")["Body"].read()
    assert body == src.read_bytes()


def test_text_input_is_always_uploaded(hook, emulator, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("3 items\n")
    run_id = hook.submit_run("sink", input_uri=str(src), input_format="text")
    assert wait(hook, "sink", run_id).status is RunEventStatus.SUCCEEDED
    assert emulator.stats()["nextmv"]["uploads"] == 1


def test_multi_file_output_is_unpacked_into_a_folder(hook, tmp_path):
    problem = {
        "resources": [{"id": "m1", "capacity": 10.0}],
        "products": [
            {"id": "a", "profit": 3.0, "max_demand": 5, "usage": {"m1": 2.0}},
            {"id": "b", "profit": 2.0, "max_demand": 5, "usage": {"m1": 1.0}},
        ],
    }
    config = {"format": {"input": {"type": "json"}, "output": {"type": "multi-file"}}}
    run_id = hook.submit_run("production-planning", input=problem, configuration=config)
    assert wait(hook, "production-planning", run_id).status is RunEventStatus.SUCCEEDED
    paths = hook.download_output("production-planning", run_id, str(tmp_path / "solution") + "/")
    names = sorted(os.path.relpath(p, tmp_path / "solution") for p in paths)
    assert names == ["plan.csv", "solution.json"]
    assert json.loads((tmp_path / "solution/solution.json").read_text())


# ------------------------------------------------------------------------------------ bad input
def test_invalid_json_fails_before_any_network_call(hook, emulator, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"products": [1, 2,')
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        hook.submit_run("echo", input_uri=str(bad))
    assert service_requests(emulator) == []


def test_large_non_json_file_fails_before_the_run_is_created(hook, emulator, tmp_path):
    bad = tmp_path / "data.csv"
    bad.write_bytes(b"a,b\n" * (2 * MIB))
    with pytest.raises(InvalidInputError, match="not JSON"):
        hook.submit_run("echo", input_uri=str(bad))
    assert emulator.stats()["nextmv"]["runs_created"] == 0


def test_missing_file(hook, emulator, tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        hook.submit_run("echo", input_uri=str(tmp_path / "nope.json"))
    assert service_requests(emulator) == []


def test_over_500_mb_fails_before_any_network_call(hook, emulator, tmp_path):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: no disk space used
        f.truncate(500_000_001)
    with pytest.raises(InvalidInputError, match="at most 500,000,000 bytes"):
        hook.submit_run("echo", input_uri=str(huge))
    assert service_requests(emulator) == []


def test_missing_s3_object(hook, s3):
    with pytest.raises(InvalidInputError, match="Cannot open input"):
        hook.submit_run("echo", input_uri=f"s3://{s3.bucket}/missing.json")


def test_missing_api_key(emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_NEXTMV_DEFAULT", json.dumps({"conn_type": "nextmv", "host": emulator.url})
    )
    with pytest.raises(CredentialsError, match="password"):
        NextmvHook().submit_run("echo", input={})


def test_wrong_api_key(emulator, monkeypatch):
    conn = {"conn_type": "nextmv", "host": emulator.url, "password": "wrong-key"}
    monkeypatch.setenv("AIRFLOW_CONN_NEXTMV_DEFAULT", json.dumps(conn))
    with pytest.raises(ServiceHTTPError, match="HTTP 401.*API key") as info:
        NextmvHook().submit_run("echo", input={})
    assert "wrong-key" not in str(info.value)


def test_unknown_app(hook):
    with pytest.raises(ServiceHTTPError, match="HTTP 404") as info:
        hook.submit_run("no-such-app", input={})
    assert info.value.status_code == 404


def test_unknown_run(hook):
    with pytest.raises(ServiceHTTPError) as info:
        hook.get_run_metadata("echo", "latest-doesnotexist")
    assert info.value.status_code == 404


# ------------------------------------------------------------------------------------ outcomes
def test_failed_run_carries_the_service_error(hook):
    run_id = hook.submit_run("fail", input={"x": 1})
    event = wait(hook, "fail", run_id)
    assert event.status is RunEventStatus.FAILED
    with pytest.raises(RunFailedError, match="failed: .*infeasible: demand exceeds capacity"):
        hook.finish(event, output_uri=None)


def test_cancel(hook):
    run_id = hook.submit_run("slow", input={"x": 1})
    hook.cancel_run("slow", run_id)
    event = wait(hook, "slow", run_id, timeout=20)
    assert event.status is RunEventStatus.CANCELED
    with pytest.raises(RunFailedError, match="was canceled"):
        hook.finish(event, output_uri=None)


def test_timeout_cancels_the_run(hook):
    run_id = hook.submit_run("slow", input={"x": 1})
    event = hook.wait_for_run(
        "slow", run_id, deadline=time.time() + 0.5, poll_interval=0.1, max_poll_interval=0.2
    )
    assert event.status is RunEventStatus.TIMEOUT
    with pytest.raises(RunTimeoutError, match="canceled"):
        hook.finish(event, output_uri=None)
    deadline = time.time() + 10
    while hook.get_run_metadata("slow", run_id)["metadata"]["status_v2"] != RunStatus.CANCELED.value:
        assert time.time() < deadline
        time.sleep(0.1)


def test_test_connection(hook, emulator, monkeypatch):
    ok, message = hook.test_connection()
    assert ok and emulator.url in message
    conn = {"conn_type": "nextmv", "host": emulator.url, "password": "nope-nope"}
    monkeypatch.setenv("AIRFLOW_CONN_NEXTMV_DEFAULT", json.dumps(conn))
    ok, message = NextmvHook().test_connection()
    assert not ok and "401" in message


def test_compact_input_under_5_mib_is_sent_inline_byte_for_byte(hook, emulator, tmp_path):
    """Issue 8: 5.1 MB of compact JSON was measured compactly, re-encoded with ", " and refused (413)."""
    points = [[i % 97, i % 89] for i in range(660_000)]
    path = tmp_path / "points.json"
    path.write_text(json.dumps({"points": points}, separators=(",", ":")))
    size = path.stat().st_size
    assert 5_000_000 < size <= MAX_INLINE_BYTES
    assert len(json.dumps({"points": points})) > MAX_INLINE_BYTES + MIB  # what json= would have sent
    run_id = hook.submit_run("echo", input_uri=str(path))
    assert wait(hook, "echo", run_id).status is RunEventStatus.SUCCEEDED
    (create,) = [
        r for r in service_requests(emulator) if r["method"] == "POST" and r["path"].endswith("/runs")
    ]
    assert size < int(create["content_length"]) < size + 512  # the file's bytes plus the envelope
    assert emulator.stats()["nextmv"]["uploads"] == 0
    out = hook.download_output("echo", run_id, str(tmp_path / "out.json"))
    assert json.loads(open(out[0]).read()) == {"points": points}
