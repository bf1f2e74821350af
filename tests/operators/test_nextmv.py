"""NextmvRunOperator against the emulator, sync and deferrable, with Airflow's XCom/state store stand-ins.

The real-Airflow proof of the same paths is tests/e2e.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider.exceptions import InvalidInputError, RunFailedError, RunTimeoutError
from airflow_provider.operators.nextmv import RUN_STATE_KEY, NextmvRunLink, NextmvRunOperator
from airflow_provider.triggers.nextmv import NextmvRunTrigger

FAST = dict(poll_interval=0.1, max_poll_interval=0.3)


def run_deferred(op, context):
    """Execute, run the trigger it defers to in an event loop, then resume with the event."""
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    deferred = info.value
    assert isinstance(deferred.trigger, NextmvRunTrigger)
    assert deferred.timeout is None  # the trigger owns the deadline
    classpath, kwargs = deferred.trigger.serialize()
    trigger = NextmvRunTrigger(**json.loads(json.dumps(kwargs)))  # what the triggerer rebuilds

    async def first_event():
        return [e async for e in trigger.run()]

    (event,) = asyncio.run(first_event())
    return getattr(op, deferred.method_name)(context, event=event.payload)


@pytest.mark.parametrize("deferrable", [False, True])
def test_submit_wait_and_write_output(nextmv_conn, emulator, context, tmp_path, deferrable):
    emulator.reset()
    op = NextmvRunOperator(
        task_id="solve",
        app_id="echo",
        input={"k": "v"},
        output_uri=str(tmp_path / "out.json"),
        deferrable=deferrable,
        **FAST,
    )
    result = run_deferred(op, context) if deferrable else op.execute(context)
    xcoms = context["ti"].xcoms
    assert result == xcoms["run_id"]
    assert xcoms["run_url"].endswith(f"/app/echo/run/{result}?view=details")
    assert xcoms["output_paths"] == [str(tmp_path / "out.json")]
    assert json.loads((tmp_path / "out.json").read_text()) == {"k": "v"}
    assert context["task_state_store"].data[RUN_STATE_KEY] == {
        "app_id": "echo",
        "run_id": result,
        "state": "completed",
    }
    assert emulator.stats()["nextmv"]["runs_created"] == 1


def test_fire_and_forget_returns_the_run_id(nextmv_conn, context):
    op = NextmvRunOperator(task_id="s", app_id="slow", input={"a": 1}, wait_for_completion=False)
    run_id = op.execute(context)
    assert run_id.startswith("latest")
    op.hook.cancel_run("slow", run_id)


@pytest.mark.parametrize("deferrable", [False, True])
def test_failed_run_fails_the_task_with_the_service_text(nextmv_conn, context, deferrable):
    op = NextmvRunOperator(task_id="s", app_id="fail", input={"a": 1}, deferrable=deferrable, **FAST)
    with pytest.raises(RunFailedError, match="infeasible: demand exceeds capacity"):
        run_deferred(op, context) if deferrable else op.execute(context)


@pytest.mark.parametrize("deferrable", [False, True])
def test_timeout_cancels_then_fails(nextmv_conn, context, deferrable):
    op = NextmvRunOperator(
        task_id="s",
        app_id="slow",
        input={"a": 1},
        deferrable=deferrable,
        timeout=timedelta(seconds=1),
        **FAST,
    )
    with pytest.raises(RunTimeoutError, match="canceled"):
        run_deferred(op, context) if deferrable else op.execute(context)
    run_id = context["ti"].xcoms["run_id"]
    assert op.hook.get_run_metadata("slow", run_id)["metadata"]["status_v2"] == "canceled"


def test_retry_after_the_worker_died_reattaches(nextmv_conn, emulator, context, next_try):
    """The first try submitted and recorded the run, then its worker died (nothing else ran)."""
    emulator.reset()
    first = NextmvRunOperator(task_id="s", app_id="slow", input={"a": 1}, wait_for_completion=False)
    run_id = first.execute(context)
    assert context["task_state_store"].data[RUN_STATE_KEY]["state"] == "in_flight"
    retry = NextmvRunOperator(task_id="s", app_id="slow", input={"a": 1}, wait_for_completion=False)
    assert retry.execute(next_try(context)) == run_id
    assert emulator.stats()["nextmv"]["runs_created"] == 1
    retry.hook.cancel_run("slow", run_id)


def test_a_cleared_task_after_success_submits_a_new_run(nextmv_conn, emulator, context, next_try):
    emulator.reset()
    first = NextmvRunOperator(task_id="s", app_id="echo", input={"a": 1}, **FAST)
    run_id = first.execute(context)
    again = NextmvRunOperator(task_id="s", app_id="echo", input={"a": 2}, **FAST)
    assert again.execute(next_try(context)) != run_id
    assert emulator.stats()["nextmv"]["runs_created"] == 2


def test_without_a_task_state_store_a_retry_finds_its_run_by_marker(nextmv_conn, emulator, context, next_try):
    """Airflow < 3.3 fallback: the run carries the task's marker in its description."""
    emulator.reset()
    del context["task_state_store"]
    first = NextmvRunOperator(
        task_id="s", app_id="slow", input={"a": 1}, description="nightly", wait_for_completion=False
    )
    run_id = first.execute(context)
    listed = first.hook.list_runs("slow")
    (mine,) = [r for r in listed if r["id"] == run_id]
    assert mine["description"].startswith("nightly [airflow-task ")
    retry = NextmvRunOperator(task_id="s", app_id="slow", input={"a": 1}, wait_for_completion=False)
    assert retry.execute(next_try(context, keep_store=False)) == run_id
    assert emulator.stats()["nextmv"]["runs_created"] == 1
    # another task instance (different DAG run) does not adopt it
    other = NextmvRunOperator(task_id="s", app_id="slow", input={"a": 1}, wait_for_completion=False)
    other_ctx = next_try(context, keep_store=False)
    other_ctx["ti"].run_id = "another-dag-run"
    other_id = other.execute(other_ctx)
    assert other_id != run_id
    for rid in (run_id, other_id):
        first.hook.cancel_run("slow", rid)


def test_retry_after_a_failed_run_submits_a_new_one(nextmv_conn, emulator, context):
    context["task_state_store"].set(
        RUN_STATE_KEY, {"app_id": "echo", "run_id": "latest-does-not-exist", "state": "in_flight"}
    )
    op = NextmvRunOperator(task_id="s", app_id="echo", input={"a": 1}, **FAST)
    assert op.execute(context) != "latest-does-not-exist"


def test_bad_arguments_fail_at_parse_time():
    with pytest.raises(InvalidInputError, match="exactly one"):
        NextmvRunOperator(task_id="s", app_id="a")
    with pytest.raises(InvalidInputError, match="exactly one"):
        NextmvRunOperator(task_id="s", app_id="a", input={}, input_uri="x.json")
    with pytest.raises(InvalidInputError, match="input_format"):
        NextmvRunOperator(task_id="s", app_id="a", input_uri="x", input_format="xml")
    with pytest.raises(InvalidInputError, match="wait_for_completion"):
        NextmvRunOperator(task_id="s", app_id="a", input={}, output_uri="o.json", wait_for_completion=False)
    with pytest.raises(InvalidInputError, match="timeout"):
        NextmvRunOperator(task_id="s", app_id="a", input={}, timeout=0)


def test_invalid_input_is_not_retried(nextmv_conn, context, tmp_path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    op = NextmvRunOperator(task_id="s", app_id="echo", input_uri=str(tmp_path / "missing.json"))
    with pytest.raises(InvalidInputError) as info:
        op.execute(context)
    assert isinstance(info.value, AirflowFailException)


def test_on_kill_cancels_the_remote_run(nextmv_conn, context):
    op = NextmvRunOperator(task_id="s", app_id="slow", input={"a": 1}, wait_for_completion=False)
    run_id = op.execute(context)
    op.on_kill()
    import time

    deadline = time.time() + 10
    while op.hook.get_run_metadata("slow", run_id)["metadata"]["status_v2"] != "canceled":
        assert time.time() < deadline
        time.sleep(0.1)


def test_templated_fields_and_link():
    assert {"input", "input_uri", "options", "output_uri", "app_id"} <= set(NextmvRunOperator.template_fields)
    assert NextmvRunLink.name == "Nextmv run"
