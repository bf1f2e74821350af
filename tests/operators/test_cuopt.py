"""CuOptSolveOperator against the emulator's NVCF API: sync and deferrable, inline and asset paths."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider.exceptions import InvalidInputError, RunFailedError, RunTimeoutError
from airflow_provider.operators.cuopt import REQUEST_STATE_KEY, CuOptSolveOperator
from airflow_provider.triggers.cuopt import CuOptSolveTrigger
from optimization_emulator.cuopt.generate import routing_problem


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory):
    """Requests stay pending for 4 s, so the deferrable path always defers."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(api_keys=("k-slow",), extra_args=("--nvcf-queue-delay", "4")) as emu:
        yield emu


@pytest.fixture
def slow_conn(slow_emulator, cuopt_key_conn):
    slow_emulator.reset()
    return cuopt_key_conn(slow_emulator, "cuopt_slow")


def big_problem_file(tmp_path):
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(routing_problem(300, 12, seed=5, time_limit=2)))
    assert path.stat().st_size > 250_000
    return path


def run_deferred(op, context):
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert info.value.timeout is None
    trigger = CuOptSolveTrigger(**json.loads(json.dumps(info.value.trigger.serialize()[1])))

    async def collect():
        return [e async for e in trigger.run()]

    (event,) = asyncio.run(collect())
    return getattr(op, info.value.method_name)(context, event=event.payload)


@pytest.mark.parametrize("deferrable", [False, True])
def test_asset_path_both_modes(slow_conn, slow_emulator, context, tmp_path, deferrable):
    src = big_problem_file(tmp_path)
    op = CuOptSolveOperator(
        task_id="solve",
        problem_uri=str(src),
        output_uri=str(tmp_path / "out") + "/",
        deferrable=deferrable,
        poll_seconds=1,
        cuopt_conn_id=slow_conn,
    )
    req_id = run_deferred(op, context) if deferrable else op.execute(context)
    xcoms = context["ti"].xcoms
    assert xcoms["req_id"] == req_id and xcoms["asset_id"]
    assert xcoms["output_paths"] == [str(tmp_path / "out" / f"{req_id}.json")]
    result = json.loads((tmp_path / "out" / f"{req_id}.json").read_text())
    assert result["response"]["solver_response"]["status"] == 0
    stats = slow_emulator.stats()["nvcf"]
    assert stats["invocations"] == 1 and stats["assets_created"] == 1 and not stats["assets_live"]
    assert context["task_state_store"].data[REQUEST_STATE_KEY]["req_id"] == req_id


def test_answer_within_the_first_window_needs_no_wait(cuopt_conn, emulator, context, tmp_path):
    emulator.reset()
    problem = routing_problem(8, 2, seed=1, time_limit=1)
    op = CuOptSolveOperator(
        task_id="s", problem=problem, output_uri=str(tmp_path / "r.json"), deferrable=True
    )
    req_id = op.execute(context)  # fulfilled in the invoke's own poll window: no deferral
    assert context["ti"].xcoms["output_paths"] == [str(tmp_path / "r.json")]
    assert emulator.stats()["nvcf"]["status_polls"] == 0 and req_id


@pytest.mark.parametrize("deferrable", [False, True])
def test_infeasible_fails_and_names_ids(cuopt_conn, context, tmp_path, deferrable):
    problem = routing_problem(10, 1, seed=2, time_limit=1)
    problem["fleet_data"]["capacities"] = [[1]]
    op = CuOptSolveOperator(
        task_id="s", problem=problem, output_uri=str(tmp_path / "r.json"), deferrable=deferrable
    )
    with pytest.raises(RunFailedError, match="infeasible"):
        op.execute(context)


@pytest.mark.parametrize("deferrable", [False, True])
def test_timeout_fails_and_deletes_the_asset(slow_conn, slow_emulator, context, tmp_path, deferrable):
    op = CuOptSolveOperator(
        task_id="s",
        problem_uri=str(big_problem_file(tmp_path)),
        output_uri=str(tmp_path / "r.json"),
        deferrable=deferrable,
        poll_seconds=1,
        timeout=1.5,
        cuopt_conn_id=slow_conn,
    )
    with pytest.raises(RunTimeoutError):
        run_deferred(op, context) if deferrable else op.execute(context)
    assert not slow_emulator.stats()["nvcf"]["assets_live"]


def test_fire_and_forget_then_on_kill_deletes_the_asset(slow_conn, slow_emulator, context, tmp_path):
    op = CuOptSolveOperator(
        task_id="s",
        problem_uri=str(big_problem_file(tmp_path)),
        output_uri=str(tmp_path / "r.json"),
        wait_for_completion=False,
        poll_seconds=1,
        cuopt_conn_id=slow_conn,
    )
    req_id = op.execute(context)
    assert req_id and slow_emulator.stats()["nvcf"]["assets_live"]
    op.on_kill()
    assert not slow_emulator.stats()["nvcf"]["assets_live"]


def test_parse_time_validation():
    with pytest.raises(InvalidInputError, match="exactly one"):
        CuOptSolveOperator(task_id="s", output_uri="o.json")
    with pytest.raises(InvalidInputError, match="output_uri"):
        CuOptSolveOperator(task_id="s", problem={}, output_uri="")
    with pytest.raises(InvalidInputError, match="poll_seconds"):
        CuOptSolveOperator(task_id="s", problem={}, output_uri="o", poll_seconds=301)


def test_bad_problem_is_not_retried(cuopt_conn, context, tmp_path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    op = CuOptSolveOperator(
        task_id="s", problem_uri=str(tmp_path / "missing.json"), output_uri=str(tmp_path / "o")
    )
    with pytest.raises(InvalidInputError) as info:
        op.execute(context)
    assert isinstance(info.value, AirflowFailException)


def test_retry_reattaches_to_the_pending_request(slow_conn, slow_emulator, context, next_try, tmp_path):
    """The first try invoked (request still pending), then its worker died."""
    src = big_problem_file(tmp_path)
    first = CuOptSolveOperator(
        task_id="s",
        problem_uri=str(src),
        output_uri=str(tmp_path) + "/",
        wait_for_completion=False,
        poll_seconds=1,
        cuopt_conn_id=slow_conn,
    )
    req_id = first.execute(context)
    assert context["task_state_store"].data[REQUEST_STATE_KEY]["state"] == "in_flight"
    retry = CuOptSolveOperator(
        task_id="s",
        problem_uri=str(src),
        output_uri=str(tmp_path) + "/",
        poll_seconds=1,
        cuopt_conn_id=slow_conn,
    )
    assert retry.execute(next_try(context)) == req_id
    stats = slow_emulator.stats()["nvcf"]
    assert stats["invocations"] == 1 and not stats["assets_live"]
    assert (tmp_path / f"{req_id}.json").exists()


def test_retry_picks_up_a_result_the_dead_try_stored(cuopt_conn, emulator, context, next_try, tmp_path):
    emulator.reset()
    problem = routing_problem(6, 2, seed=3, time_limit=1)
    first = CuOptSolveOperator(
        task_id="s", problem=problem, output_uri=str(tmp_path) + "/", wait_for_completion=False
    )
    req_id = first.execute(context)  # fulfilled at once and stored; pretend the worker died before success
    context["task_state_store"].data[REQUEST_STATE_KEY]["state"] = "in_flight"
    retry = CuOptSolveOperator(task_id="s", problem=problem, output_uri=str(tmp_path) + "/")
    assert retry.execute(next_try(context)) == req_id
    assert emulator.stats()["nvcf"]["invocations"] == 1


def test_retry_after_a_lost_result_solves_again(cuopt_conn, emulator, context, next_try, tmp_path):
    emulator.reset()
    problem = routing_problem(6, 2, seed=3, time_limit=1)
    context["task_state_store"].set(
        REQUEST_STATE_KEY,
        {"req_id": "gone-request", "asset_id": None, "output_uri": str(tmp_path) + "/", "state": "in_flight"},
    )
    op = CuOptSolveOperator(task_id="s", problem=problem, output_uri=str(tmp_path) + "/")
    assert op.execute(next_try(context)) != "gone-request"
    assert emulator.stats()["nvcf"]["invocations"] == 1
