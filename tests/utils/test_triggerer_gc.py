"""The opt-in gc.freeze() of the triggerer process: off by default, once per process when enabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import asyncio, gc, json, time
from airflow_provider.triggers.nextmv import NextmvRunTrigger
from airflow_provider.utils.triggerer_gc import freeze_startup_objects_once

async def main():
    trigger = NextmvRunTrigger(app_id="a", run_id="r", end_time=time.time() - 1, nextmv_conn_id="none")
    [e async for e in trigger.run()]  # deadline already past: one timeout event, no network
    return gc.get_freeze_count(), freeze_startup_objects_once()

frozen, again = asyncio.run(main())
print(json.dumps({"frozen": frozen, "again": again}))
"""


def run(env_value):
    env = {k: v for k, v in os.environ.items() if "TRIGGERER_GC_FREEZE" not in k}
    if env_value is not None:
        env["AIRFLOW__OPTIMIZATION_PROVIDER__TRIGGERER_GC_FREEZE"] = env_value
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_off_by_default():
    assert run(None) == {"frozen": 0, "again": False}


def test_enabled_freezes_once_when_the_first_trigger_starts():
    result = run("True")
    assert result["frozen"] > 10_000  # Airflow's and the provider's start-up objects
    assert result["again"] is False
