"""CuOptSolveSensor against the emulator: poke and deferrable modes, and results already stored."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import PokeReturnValue, TaskDeferred

from airflow_provider.exceptions import RunFailedError
from airflow_provider.operators.cuopt import CuOptSolveOperator
from airflow_provider.sensors.cuopt import CuOptSolveSensor
from airflow_provider.triggers.cuopt import CuOptSolveTrigger
from optimization_emulator.cuopt.generate import routing_problem


@pytest.fixture(scope="module")
def queued():
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(api_keys=("k-s",), extra_args=("--nvcf-queue-delay", "3")) as emu:
        yield emu


@pytest.fixture
def conn(queued, cuopt_key_conn):
    queued.reset()
    return cuopt_key_conn(queued)


def submit(context, tmp_path, problem=None):
    op = CuOptSolveOperator(
        task_id="submit",
        problem=problem or routing_problem(300, 12, seed=7, time_limit=1),
        output_uri=str(tmp_path) + "/",
        wait_for_completion=False,
        poll_seconds=1,
    )
    return op.execute(context), context["ti"].xcoms["asset_id"]


def test_poke_until_done_then_paths_and_asset_deleted(conn, queued, context, tmp_path):
    req_id, asset_id = submit(context, tmp_path)
    sensor = CuOptSolveSensor(
        task_id="w", req_id=req_id, asset_id=asset_id, output_uri=str(tmp_path) + "/", poll_seconds=1
    )
    results = []
    for _ in range(30):
        results.append(sensor.poke(context))
        if results[-1] is not False:
            break
    assert results[0] is False
    done = results[-1]
    assert isinstance(done, PokeReturnValue) and done.xcom_value == [str(tmp_path / f"{req_id}.json")]
    assert not queued.stats()["nvcf"]["assets_live"]


def test_deferrable_sensor(conn, queued, context, tmp_path):
    import asyncio

    req_id, asset_id = submit(context, tmp_path)
    sensor = CuOptSolveSensor(
        task_id="w",
        req_id=req_id,
        asset_id=asset_id,
        output_uri=str(tmp_path) + "/",
        deferrable=True,
        poll_seconds=1,
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(context)
    trigger = CuOptSolveTrigger(**info.value.trigger.serialize()[1])

    async def collect():
        return [e async for e in trigger.run()]

    (event,) = asyncio.run(collect())
    assert sensor.execute_complete(context, event.payload) == [str(tmp_path / f"{req_id}.json")]
    assert not queued.stats()["nvcf"]["assets_live"]


def test_result_received_by_the_operator_is_picked_up(cuopt_conn, emulator, context, tmp_path):
    """NVCF answered the invocation at once: the operator stored it; NVCF now says 404."""
    small = routing_problem(5, 2, seed=1, time_limit=1)
    op = CuOptSolveOperator(
        task_id="submit", problem=small, output_uri=str(tmp_path) + "/", wait_for_completion=False
    )
    req_id = op.execute(context)
    sensor = CuOptSolveSensor(task_id="w", req_id=req_id, output_uri=str(tmp_path) + "/", poll_seconds=1)
    assert sensor.poke(context).xcom_value == [str(tmp_path / f"{req_id}.json")]
    elsewhere = CuOptSolveSensor(
        task_id="w", req_id=req_id, output_uri=str(tmp_path / "other") + "/", poll_seconds=1
    )
    with pytest.raises(RunFailedError, match="handed out once"):
        elsewhere.poke(context)


def test_templated_none_asset_is_ignored(cuopt_conn, context, tmp_path):
    sensor = CuOptSolveSensor(task_id="w", req_id="x", asset_id="None", output_uri=str(tmp_path))
    with pytest.raises(RunFailedError):
        sensor.poke(context)
