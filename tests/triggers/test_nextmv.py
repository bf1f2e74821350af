"""NextmvRunTrigger in an asyncio loop against the emulator."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.triggers.nextmv import NextmvRunTrigger


def make(run_id, app="echo", end_in=60.0, **kw):
    return NextmvRunTrigger(
        app_id=app,
        run_id=run_id,
        end_time=time.time() + end_in,
        poll_interval=0.1,
        max_poll_interval=0.3,
        **kw,
    )


async def events_of(trigger):
    return [e async for e in trigger.run()]


@pytest.fixture
def hook(nextmv_conn):
    return NextmvHook(nextmv_conn)


def test_serialize_round_trip_with_primitives_only():
    trigger = NextmvRunTrigger(
        app_id="a", run_id="r", end_time=1.7e9, nextmv_conn_id="c", poll_interval=2, max_poll_interval=9
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider.triggers.nextmv.NextmvRunTrigger"
    json.dumps(kwargs)  # primitives only
    assert NextmvRunTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert kwargs["end_time"] == 1.7e9  # absolute wall clock, not "remaining seconds"


async def test_success_yields_exactly_one_event(hook):
    run_id = hook.submit_run("echo", input={"a": 1})
    events = await events_of(make(run_id))
    assert [e.payload for e in events] == [
        {"status": "succeeded", "app_id": "echo", "run_id": run_id, "message": ""}
    ]


async def test_failure_event_has_the_service_message(hook):
    run_id = hook.submit_run("fail", input={"a": 1})
    (event,) = await events_of(make(run_id, app="fail"))
    assert event.payload["status"] == "failed" and "infeasible" in event.payload["message"]


async def test_deadline_gives_a_timeout_event(hook):
    run_id = hook.submit_run("slow", input={"a": 1})
    try:
        started = time.monotonic()
        (event,) = await events_of(make(run_id, app="slow", end_in=0.6))
        assert event.payload["status"] == "timeout"
        assert time.monotonic() - started < 5
    finally:
        hook.cancel_run("slow", run_id)


async def test_deadline_in_the_past_after_a_restart(hook):
    run_id = hook.submit_run("slow", input={"a": 1})
    try:
        (event,) = await events_of(make(run_id, app="slow", end_in=-10))
        assert event.payload["status"] == "timeout"
    finally:
        hook.cancel_run("slow", run_id)


async def test_keeps_polling_while_running(hook):
    run_id = hook.submit_run("slow", input={"a": 1})
    task = asyncio.create_task(make(run_id, app="slow").run().__anext__())
    await asyncio.sleep(1.0)
    assert not task.done()
    task.cancel()
    hook.cancel_run("slow", run_id)


async def test_service_error_becomes_one_error_event(emulator, monkeypatch):
    conn = {"conn_type": "nextmv", "host": emulator.url, "password": "bad-key-123"}
    monkeypatch.setenv("AIRFLOW_CONN_NEXTMV_DEFAULT", json.dumps(conn))
    (event,) = await events_of(make("latest-x"))
    assert event.payload["status"] == "error" and "401" in event.payload["message"]
    assert "bad-key-123" not in event.payload["message"]


async def test_on_kill_cancels_the_run(hook):
    run_id = hook.submit_run("slow", input={"a": 1})
    await make(run_id, app="slow").on_kill()
    deadline = time.time() + 10
    while hook.get_run_metadata("slow", run_id)["metadata"]["status_v2"] != "canceled":
        assert time.time() < deadline
        await asyncio.sleep(0.1)
