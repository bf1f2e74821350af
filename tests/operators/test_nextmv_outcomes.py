"""Solve outcomes of NextmvRunOperator / NextmvRunSensor against the emulator: the ``solution_summary``
XCom (metrics and the older statistics), the outcome policy, ``on_infeasible``, the run log in the task
log, a retry that finds a run failed on its input, and the run link after a failed submit."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider.events.summary import SUMMARY_XCOM_KEY
from airflow_provider.exceptions import (
    InfeasibleError,
    InvalidProblemError,
    RunFailedError,
    ServiceRejectedError,
)
from airflow_provider.operators.nextmv import RUN_STATE_KEY, NextmvRunLink, NextmvRunOperator
from airflow_provider.sensors.nextmv import NextmvRunSensor
from airflow_provider.triggers.nextmv import NextmvRunTrigger

FAST = dict(poll_interval=0.1, max_poll_interval=0.3)
ITEMS = [
    {"id": "a", "value": 10, "weight": 5},
    {"id": "b", "value": 7, "weight": 4},
    {"id": "c", "value": 3, "weight": 6},
]


def run(op, context, deferrable):
    if not deferrable:
        return op.execute(context)
    try:
        return op.execute(context)
    except TaskDeferred as deferred:
        trigger = NextmvRunTrigger(**json.loads(json.dumps(deferred.trigger.serialize()[1])))

        async def first_event():
            return [e async for e in trigger.run()]

        (event,) = asyncio.run(first_event())
        return getattr(op, deferred.method_name)(context, event=event.payload)


@pytest.mark.parametrize("deferrable", [False, True])
def test_knapsack_summary_from_statistics_and_run_log(nextmv_conn, context, tmp_path, deferrable, capfd):
    op = NextmvRunOperator(
        task_id="solve",
        app_id="knapsack",
        input={"items": ITEMS, "capacity": 9},
        output_uri=str(tmp_path / "out.json"),
        deferrable=deferrable,
        **FAST,
    )
    run_id = run(op, context, deferrable)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["service"] == "nextmv" and summary["run_id"] == run_id and summary["app_id"] == "knapsack"
    assert summary["status"] == "optimal" and summary["objective"] == pytest.approx(17.0)  # a + b
    assert summary["gap"] == pytest.approx(0.0, abs=1e-9) and summary["solve_time_s"] >= 0
    assert summary["instance_id"] == "latest" and summary["version_id"] == "emulator"
    assert summary["execution_class"] == "emulator"
    assert summary["link"] == context["ti"].xcoms["run_url"] == op.run_url
    assert summary["output_paths"] == [str(tmp_path / "out.json")]
    out = capfd.readouterr().out
    assert f"Nextmv run log of {run_id}" in out and "knapsack: 3 items" in out


def test_metrics_win_over_statistics_and_are_bounded(nextmv_conn, context):
    output = {
        "metrics": {"objective": 12.5, "solver": {"status": "feasible"}, "calcs": {"gap": 0.02}},
        "statistics": {"schema": "v1", "result": {"value": 99.0}},
    }
    NextmvRunOperator(task_id="s", app_id="echo", input=output, **FAST).execute(context)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["status"] == "feasible" and summary["objective"] == 12.5
    assert summary["metrics"] == output["metrics"]

    huge = {"metrics": {"objective": 1.0, "series": list(range(20_000))}}
    NextmvRunOperator(task_id="s", app_id="echo", input=huge, **FAST).execute(context)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["objective"] == 1.0 and set(summary["metrics"]) == {"omitted"}
    assert len(json.dumps(summary)) < 4000


def test_app_without_figures_reads_succeeded(nextmv_conn, context):
    NextmvRunOperator(task_id="s", app_id="echo", input={"k": "v"}, **FAST).execute(context)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["status"] == "succeeded" and summary["objective"] is None and summary["metrics"] is None


@pytest.mark.parametrize("deferrable", [False, True])
def test_app_reported_infeasible_fails_or_succeeds(nextmv_conn, context, tmp_path, deferrable):
    output = {"metrics": {"status": "infeasible"}, "solutions": []}
    op = NextmvRunOperator(
        task_id="s",
        app_id="echo",
        input=output,
        output_uri=str(tmp_path / "o.json"),
        deferrable=deferrable,
        **FAST,
    )
    with pytest.raises(InfeasibleError, match="app reports infeasible") as info:
        run(op, context, deferrable)
    assert isinstance(info.value, AirflowFailException)
    assert context["ti"].xcoms[SUMMARY_XCOM_KEY]["status"] == "infeasible"
    assert (tmp_path / "o.json").is_file()  # the output is kept for inspection

    op = NextmvRunOperator(
        task_id="s", app_id="echo", input=output, on_infeasible="succeed", deferrable=deferrable, **FAST
    )
    run(op, context, deferrable)
    assert context["ti"].xcoms[SUMMARY_XCOM_KEY]["status"] == "infeasible"


@pytest.mark.parametrize("deferrable", [False, True])
def test_run_failed_on_input_is_permanent_and_logs_the_run_log(nextmv_conn, context, deferrable, capfd):
    op = NextmvRunOperator(
        task_id="s", app_id="knapsack", input={"items": "nope"}, deferrable=deferrable, **FAST
    )
    with pytest.raises(InvalidProblemError, match="invalid input") as info:
        run(op, context, deferrable)
    assert isinstance(info.value, AirflowFailException)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["status"] == "invalid" and "invalid input" in summary["message"]
    assert "error: invalid input" in capfd.readouterr().out  # the run log, copied by the worker


def test_other_run_failures_stay_retryable(nextmv_conn, context):
    op = NextmvRunOperator(task_id="s", app_id="fail", input={"a": 1}, **FAST)
    with pytest.raises(RunFailedError) as info:
        op.execute(context)
    assert not isinstance(info.value, AirflowFailException)
    assert context["ti"].xcoms[SUMMARY_XCOM_KEY]["status"] == "error"


@pytest.mark.parametrize("keep_store", [True, False])
def test_retry_finding_a_run_failed_on_input_fails_the_same_way(
    nextmv_conn, emulator, context, next_try, keep_store
):
    """With the task state store (a worker that died before completing) and without it (Airflow <
    3.3: the run is found by the task's marker), the failed run is not submitted again."""
    emulator.reset()
    op = NextmvRunOperator(task_id="s", app_id="knapsack", input={"items": "nope"}, **FAST)
    with pytest.raises(InvalidProblemError):
        op.execute(context)
    context["task_state_store"].data[RUN_STATE_KEY]["state"] = "in_flight"  # as if it crashed
    second = next_try(context, keep_store=keep_store)
    op = NextmvRunOperator(task_id="s", app_id="knapsack", input={"items": "nope"}, **FAST)
    with pytest.raises(InvalidProblemError, match="invalid input"):
        op.execute(second)
    assert emulator.stats()["nextmv"]["runs_created"] == 1


def test_failed_submit_logs_one_error_and_the_link_needs_no_xcom(nextmv_conn, context):
    op = NextmvRunOperator(task_id="s", app_id="no-such-app", input={"a": 1}, retries=3, **FAST)
    with pytest.raises(ServiceRejectedError) as info:
        op.execute(context)
    assert isinstance(info.value, AirflowFailException)  # a 404 app: not retried
    # Airflow computes links on this operator once the task ended; no XCom lookup (which would log
    # "ERROR XCom not found" for the run_url never pushed) happens: ti_key=None would break one.
    assert NextmvRunLink().get_link(op, ti_key=None) == ""


def test_link_after_a_run(nextmv_conn, context):
    op = NextmvRunOperator(task_id="s", app_id="echo", input={"a": 1}, **FAST)
    run_id = op.execute(context)
    assert NextmvRunLink().get_link(op, ti_key=None).endswith(f"/app/echo/run/{run_id}?view=details")


def test_sensor_pushes_the_summary(nextmv_conn, context):
    submit = NextmvRunOperator(task_id="s", app_id="knapsack", input={"items": ITEMS, "capacity": 9}, **FAST)
    run_id = submit.execute(context)
    sensor = NextmvRunSensor(task_id="w", app_id="knapsack", run_id=run_id, poke_interval=0.1)
    context["ti"].xcoms.clear()
    done = None
    for _ in range(100):
        done = sensor.poke(context)
        if done:
            break
    assert done and context["ti"].xcoms[SUMMARY_XCOM_KEY]["objective"] == pytest.approx(17.0)
