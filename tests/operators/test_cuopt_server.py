"""CuOptSolveOperator and CuOptSolveSensor on a self-hosted cuOpt server (connection type
``cuopt_server``) against the emulator: sync and deferrable, MPS input, resume, on_kill, and the
same DAG switched between backends by ``cuopt_conn_id`` alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider.exceptions import InvalidInputError, InvalidProblemError
from airflow_provider.operators.cuopt import REQUEST_STATE_KEY, CuOptSolveOperator
from airflow_provider.sensors.cuopt import CuOptSolveSensor
from airflow_provider.triggers.cuopt import CuOptSolveTrigger
from optimization_emulator.testing.cuopt import TINY_LP, CuOptServerClient

KNAPSACK = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "knapsack.mps"


@pytest.fixture
def server(queued_cuopt_server):
    return queued_cuopt_server


@pytest.fixture
def conn(queued_server_conn):
    return queued_server_conn


def run_deferred(task, context):
    with pytest.raises(TaskDeferred) as info:
        task.execute(context)
    assert info.value.timeout is None
    classpath, kwargs = info.value.trigger.serialize()
    trigger = CuOptSolveTrigger(**json.loads(json.dumps(kwargs)))
    assert kwargs["conn_type"] == "cuopt_server"

    async def collect():
        return [e async for e in trigger.run()]

    (event,) = asyncio.run(collect())
    return getattr(task, info.value.method_name)(context, event=event.payload)


def stored(path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.mark.parametrize("deferrable", [False, True])
def test_mps_milp_both_modes(conn, server, context, tmp_path, deferrable):
    op = CuOptSolveOperator(
        task_id="solve",
        problem_uri=str(KNAPSACK),
        output_uri=str(tmp_path) + "/",
        deferrable=deferrable,
        poll_seconds=2,
        cuopt_conn_id=conn,
    )
    req_id = run_deferred(op, context) if deferrable else op.execute(context)
    xcoms = context["ti"].xcoms
    assert xcoms["req_id"] == req_id and xcoms["asset_id"] is None
    assert xcoms["output_paths"] == [str(tmp_path / f"{req_id}.json")]
    solution = stored(tmp_path / f"{req_id}.json")["response"]["solver_response"]["solution"]
    assert solution["primal_objective"] == pytest.approx(-21.0)
    assert context["task_state_store"].data[REQUEST_STATE_KEY] == {
        "req_id": req_id,
        "asset_id": None,
        "output_uri": str(tmp_path) + "/",
        "state": "completed",
    }
    stats = server.stats()["cuopt_server"]
    assert stats["requests_submitted"] == 1 and stats["requests_deleted"] == 1 and stats["jobs_live"] == 0


def test_the_same_task_runs_on_nvcf_by_changing_the_connection(cuopt_conn, emulator, context, tmp_path):
    emulator.reset()
    op = CuOptSolveOperator(
        task_id="solve", problem_uri=str(KNAPSACK), output_uri=str(tmp_path / "nvcf.json")
    )
    req_id = op.execute(context)
    assert stored(tmp_path / "nvcf.json")["response"]["solver_response"]["solution"]["primal_objective"] == (
        pytest.approx(-21.0)
    )
    assert emulator.stats()["nvcf"]["invocations"] == 1 and req_id


def test_server_only_arguments_are_refused_on_nvcf(cuopt_conn, context, tmp_path):
    op = CuOptSolveOperator(
        task_id="s", problem=TINY_LP, output_uri=str(tmp_path / "r.json"), solver_logs=True
    )
    with pytest.raises(InvalidInputError, match="self-hosted"):
        op.execute(context)


def test_invalid_problem_fails_without_retry(conn, context, tmp_path):
    bad = {**TINY_LP, "variable_bounds": {"upper_bounds": [1.0], "lower_bounds": [0.0, 0.0]}}
    op = CuOptSolveOperator(task_id="s", problem=bad, output_uri=str(tmp_path / "r.json"), cuopt_conn_id=conn)
    with pytest.raises(InvalidProblemError):
        op.execute(context)


def test_retry_reattaches_without_a_second_request(conn, server, context, next_try, tmp_path):
    first = CuOptSolveOperator(
        task_id="s",
        problem=TINY_LP,
        output_uri=str(tmp_path) + "/",
        wait_for_completion=False,
        cuopt_conn_id=conn,
    )
    req_id = first.execute(context)
    assert context["task_state_store"].data[REQUEST_STATE_KEY]["state"] == "in_flight"
    retry = CuOptSolveOperator(
        task_id="s", problem=TINY_LP, output_uri=str(tmp_path) + "/", cuopt_conn_id=conn
    )
    assert retry.execute(next_try(context)) == req_id
    assert server.stats()["cuopt_server"]["requests_submitted"] == 1
    assert (tmp_path / f"{req_id}.json").exists()


def test_retry_after_a_server_restart_submits_again(conn, server, context, next_try, tmp_path):
    context["task_state_store"].set(
        REQUEST_STATE_KEY,
        {"req_id": "lost-request", "asset_id": None, "output_uri": str(tmp_path) + "/", "state": "in_flight"},
    )
    op = CuOptSolveOperator(task_id="s", problem=TINY_LP, output_uri=str(tmp_path) + "/", cuopt_conn_id=conn)
    assert op.execute(next_try(context)) != "lost-request"
    assert server.stats()["cuopt_server"]["requests_submitted"] == 1


def test_on_kill_aborts_the_job(conn, server, context, tmp_path):
    op = CuOptSolveOperator(
        task_id="s",
        problem=TINY_LP,
        output_uri=str(tmp_path) + "/",
        wait_for_completion=False,
        cuopt_conn_id=conn,
    )
    req_id = op.execute(context)
    op.on_kill()
    answer = CuOptServerClient(server.cuopt_server_url).solution(req_id)
    assert answer.status_code == 500 and "aborted" in answer.json()["error"]


@pytest.mark.parametrize("deferrable", [False, True])
def test_sensor_waits_for_a_submitted_job(conn, server, context, tmp_path, deferrable):
    req_id = CuOptServerClient(server.cuopt_server_url).submit_id(TINY_LP)
    sensor = CuOptSolveSensor(
        task_id="wait",
        req_id=req_id,
        output_uri=str(tmp_path) + "/",
        poll_seconds=1,
        poke_interval=0.5,
        timeout=60,
        deferrable=deferrable,
        cuopt_conn_id=conn,
    )
    paths = run_deferred(sensor, context) if deferrable else sensor.execute(context)
    assert paths == [str(tmp_path / f"{req_id}.json")]
    assert stored(paths[0])["response"]["solver_response"]["status"] == "Optimal"
    assert server.stats()["cuopt_server"]["requests_deleted"] == 1
