"""NextmvRunSensor against the emulator: poke and deferrable modes end the same way."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.providers.common.compat.sdk import PokeReturnValue, TaskDeferred

from airflow_provider.exceptions import RunFailedError
from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.sensors.nextmv import NextmvRunSensor
from airflow_provider.triggers.nextmv import NextmvRunTrigger


def finished_run(app="echo", payload=None):
    hook = NextmvHook()
    run_id = hook.submit_run(app, input=payload or {"answer": 42})
    event = hook.wait_for_run(
        app, run_id, deadline=__import__("time").time() + 60, poll_interval=0.1, max_poll_interval=0.3
    )
    return run_id, event


def test_poke_returns_output_paths(nextmv_conn, context, tmp_path):
    run_id, _ = finished_run()
    sensor = NextmvRunSensor(task_id="w", app_id="echo", run_id=run_id, output_uri=str(tmp_path) + "/")
    result = sensor.poke(context)
    assert isinstance(result, PokeReturnValue) and result.is_done
    assert result.xcom_value == [str(tmp_path / f"{run_id}.json")]
    assert json.loads((tmp_path / f"{run_id}.json").read_text()) == {"answer": 42}


def test_poke_not_done_while_running(nextmv_conn, context):
    hook = NextmvHook()
    run_id = hook.submit_run("slow", input={"a": 1})
    try:
        assert NextmvRunSensor(task_id="w", app_id="slow", run_id=run_id).poke(context) is False
    finally:
        hook.cancel_run("slow", run_id)


def test_deferrable_sensor_returns_paths(nextmv_conn, context, s3):
    hook = NextmvHook()
    run_id = hook.submit_run("slow", input={"a": 1})  # still running when the sensor starts
    sensor = NextmvRunSensor(
        task_id="w",
        app_id="slow",
        run_id=run_id,
        output_uri=f"s3://{s3.bucket}/out/",
        deferrable=True,
        poke_interval=0.1,
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(context)
    trigger = NextmvRunTrigger(**info.value.trigger.serialize()[1])
    hook.cancel_run("slow", run_id)
    (event,) = asyncio.run(_collect(trigger))
    with pytest.raises(RunFailedError, match="canceled"):
        sensor.execute_complete(context, event.payload)

    run_id, _ = finished_run()
    sensor = NextmvRunSensor(
        task_id="w", app_id="echo", run_id=run_id, output_uri=f"s3://{s3.bucket}/out/", deferrable=True
    )
    paths = sensor.execute(context)  # already finished: no deferral needed
    assert paths == [f"s3://{s3.bucket}/out/{run_id}.json"]
    assert json.loads(s3.get_object(Bucket=s3.bucket, Key=f"out/{run_id}.json")["Body"].read()) == {
        "answer": 42
    }


async def _collect(trigger):
    return [e async for e in trigger.run()]


def test_failed_run_fails_the_sensor(nextmv_conn, context):
    run_id, _ = finished_run("fail")
    with pytest.raises(RunFailedError, match="infeasible"):
        NextmvRunSensor(task_id="w", app_id="fail", run_id=run_id).poke(context)


def test_without_output_uri_returns_empty_list(nextmv_conn, context):
    run_id, _ = finished_run()
    assert NextmvRunSensor(task_id="w", app_id="echo", run_id=run_id).poke(context).xcom_value == []
