"""Triggers on one event loop share one HTTP session (and connection pool) per service settings."""

from __future__ import annotations

import asyncio
import json
import time

from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.hooks.nextmv_async import NextmvAsyncHook
from airflow_provider.triggers.nextmv import NextmvRunTrigger
from airflow_provider.utils import async_sessions


async def test_many_triggers_one_session(nextmv_conn, emulator, monkeypatch):
    # Runs that last a while (the emulator's `timer` app, 4 at a time): the triggers overlap, each
    # holding the shared session for its whole wait, so the watcher's samples cannot miss it.
    hook = NextmvHook(nextmv_conn)
    run_ids = [hook.submit_run("timer", input={"seconds": 1}) for _ in range(16)]
    seen, after_acquire = [], []
    acquire = async_sessions.acquire

    def counting_acquire(key, factory):
        session = acquire(key, factory)
        after_acquire.append(async_sessions.open_sessions())
        return session

    monkeypatch.setattr(async_sessions, "acquire", counting_acquire)

    async def watch():
        while True:
            seen.append(async_sessions.open_sessions())
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    triggers = [
        NextmvRunTrigger(
            app_id="timer", run_id=r, end_time=time.time() + 60, poll_interval=0.2, max_poll_interval=0.5
        )
        for r in run_ids
    ]
    results = await asyncio.gather(*[_first(t) for t in triggers])
    watcher.cancel()
    assert [e.payload["status"] for e in results] == ["succeeded"] * 16
    assert len(after_acquire) == 16  # every trigger took the shared session ...
    assert max(after_acquire) == 1  # ... and there was never a second one
    assert max(seen) == 1  # sixteen overlapping waits, one open session
    assert async_sessions.open_sessions() == 0  # closed once the last user released it


async def test_different_credentials_never_share(emulator, monkeypatch):
    for name, key in (("A", emulator.api_key), ("B", "another-key-123")):
        conn = {"conn_type": "nextmv", "host": emulator.url, "password": key}
        monkeypatch.setenv(f"AIRFLOW_CONN_NEXTMV_{name}", json.dumps(conn))
    async with NextmvAsyncHook("nextmv_a") as a, NextmvAsyncHook("nextmv_b") as b:
        assert await a.session() is not await b.session()
        assert async_sessions.open_sessions() == 2
    assert async_sessions.open_sessions() == 0


async def _first(trigger):
    return [e async for e in trigger.run()][0]
