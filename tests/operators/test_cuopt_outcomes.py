"""Solve outcomes of CuOptSolveOperator / CuOptSolveSensor against the emulator's LP solver (HiGHS):
the ``solution_summary`` XCom, the outcome policy (permanent vs retryable), ``on_infeasible``, a retry
that meets the stored result of an earlier try, and cuOpt's notes/warnings in the task log."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider.events.summary import SUMMARY_XCOM_KEY
from airflow_provider.exceptions import InfeasibleError, InvalidProblemError, RunFailedError
from airflow_provider.operators.cuopt import REQUEST_STATE_KEY, CuOptSolveOperator
from airflow_provider.sensors.cuopt import CuOptSolveSensor
from airflow_provider.triggers.cuopt import CuOptSolveTrigger


def lp(*, upper=(5.4, 4.9), maximize=False, integer=False, costs=(-0.2, 0.1)):
    """The cuOpt docs' tiny LP (optimum -0.36 at x=1.8, y=0), or a variant of it."""
    problem = {
        "csr_constraint_matrix": {
            "offsets": [0, 2, 4],
            "indices": [0, 1, 0, 1],
            "values": [3.0, 4.0, 2.7, 10.1],
        },
        "constraint_bounds": {"upper_bounds": list(upper), "lower_bounds": ["ninf", "ninf"]},
        "objective_data": {"coefficients": list(costs), "scalability_factor": 1.0, "offset": 0.0},
        "variable_bounds": {"upper_bounds": ["inf", "inf"], "lower_bounds": [0.0, 0.0]},
        "maximize": maximize,
    }
    if integer:
        problem["variable_types"] = ["I", "I"]
    return problem


#: 3x + 4y <= -1 with x, y >= 0: no feasible point.
INFEASIBLE = lp(upper=(-1.0, 4.9))
#: maximize x + y subject to upper bounds that only bind from below: unbounded.
UNBOUNDED = {
    "csr_constraint_matrix": {"offsets": [0, 2], "indices": [0, 1], "values": [1.0, -1.0]},
    "constraint_bounds": {"upper_bounds": [1.0], "lower_bounds": ["ninf"]},
    "objective_data": {"coefficients": [1.0, 1.0], "scalability_factor": 1.0, "offset": 0.0},
    "variable_bounds": {"upper_bounds": ["inf", "inf"], "lower_bounds": [0.0, 0.0]},
    "maximize": True,
}


def run(op, context, deferrable):
    if not deferrable:
        return op.execute(context)
    try:
        return op.execute(context)  # answered within the invoke's window: no deferral
    except TaskDeferred as deferred:
        trigger = CuOptSolveTrigger(**json.loads(json.dumps(deferred.trigger.serialize()[1])))

        async def collect():
            return [e async for e in trigger.run()]

        (event,) = asyncio.run(collect())
        return getattr(op, deferred.method_name)(context, event=event.payload)


def solve(conn, tmp_path, problem, **kwargs):
    return CuOptSolveOperator(
        task_id="solve", problem=problem, output_uri=str(tmp_path) + "/", cuopt_conn_id=conn, **kwargs
    )


@pytest.mark.parametrize("deferrable", [False, True])
def test_optimal_lp_summary(cuopt_conn, context, tmp_path, deferrable):
    req_id = run(solve(cuopt_conn, tmp_path, lp(), deferrable=deferrable), context, deferrable)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["service"] == "cuopt-nvcf" and summary["run_id"] == req_id
    assert summary["status"] == "optimal" and summary["problem_kind"] == "LP"
    assert summary["objective"] == pytest.approx(-0.36)
    assert summary["gap"] is not None and summary["solve_time_s"] >= 0
    assert (
        summary["output_paths"] == [str(tmp_path / f"{req_id}.json")] == context["ti"].xcoms["output_paths"]
    )
    assert summary["link"] is None and summary["metrics"] is None
    assert len(json.dumps(summary)) < 2000  # small: never the solution


def test_milp_summary_has_bound_and_gap(cuopt_conn, context, tmp_path):
    solve(cuopt_conn, tmp_path, lp(integer=True, costs=(-1.0, -1.0))).execute(context)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["status"] == "optimal" and summary["problem_kind"] == "IP"  # all-integer
    assert summary["objective"] == pytest.approx(-1.0)  # x=1, y=0 or x=0, y=1 within 3x+4y<=5.4
    assert summary["best_bound"] == pytest.approx(-1.0) and summary["gap"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("deferrable", [False, True])
@pytest.mark.parametrize(("problem", "status"), [(INFEASIBLE, "infeasible"), (UNBOUNDED, "unbounded")])
def test_no_solution_fails_without_retries(cuopt_conn, context, tmp_path, deferrable, problem, status):
    op = solve(cuopt_conn, tmp_path, problem, deferrable=deferrable, retries=2)
    with pytest.raises(InfeasibleError, match="not retried") as info:
        run(op, context, deferrable)
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value, RunFailedError)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["status"] == status
    assert summary["objective"] is None or status == "unbounded"  # an unbounded LP may hold a feasible point
    assert summary["output_paths"]  # the result is kept for inspection


@pytest.mark.parametrize("deferrable", [False, True])
def test_on_infeasible_succeed(cuopt_conn, context, tmp_path, deferrable):
    op = solve(cuopt_conn, tmp_path, INFEASIBLE, deferrable=deferrable, on_infeasible="succeed")
    req_id = run(op, context, deferrable)
    assert context["ti"].xcoms[SUMMARY_XCOM_KEY]["status"] == "infeasible"
    assert context["ti"].xcoms["output_paths"] == [str(tmp_path / f"{req_id}.json")]


def test_retry_meeting_the_stored_infeasible_result_fails_again(
    cuopt_conn, emulator, context, next_try, tmp_path
):
    """The issue's scenario: the first try stored an infeasible result; a retry that re-attaches to
    that request (NVCF now answers 404) must end as the result says, not succeed on "already stored"."""
    emulator.reset()
    with pytest.raises(InfeasibleError):
        solve(cuopt_conn, tmp_path, INFEASIBLE, retries=2).execute(context)
    store = context["task_state_store"]
    assert store.data[REQUEST_STATE_KEY]["state"] == "completed"  # a cleared task solves anew
    store.data[REQUEST_STATE_KEY]["state"] = "in_flight"  # as if the worker died before completing
    second = next_try(context)
    with pytest.raises(InfeasibleError):
        solve(cuopt_conn, tmp_path, INFEASIBLE, retries=2).execute(second)
    assert second["ti"].xcoms[SUMMARY_XCOM_KEY]["status"] == "infeasible"
    assert emulator.stats()["nvcf"]["invocations"] == 1  # nothing solved again


def test_invalid_problem_fails_without_retries(cuopt_conn, context, tmp_path):
    bad = lp()
    bad["csr_constraint_matrix"]["offsets"] = [0, 2, 9]  # points past the values
    with pytest.raises(InvalidProblemError, match="not retried") as info:
        solve(cuopt_conn, tmp_path, bad).execute(context)
    assert isinstance(info.value, AirflowFailException)
    summary = context["ti"].xcoms[SUMMARY_XCOM_KEY]
    assert summary["status"] == "invalid" and summary["output_paths"] == [] and summary["message"]


def test_notes_and_warnings_reach_the_task_log(cuopt_conn, context, tmp_path, capfd):
    problem = {**lp(), "solver_config": {"time_limit": 5, "no_such_setting": 1}}
    solve(cuopt_conn, tmp_path, problem).execute(context)
    out = capfd.readouterr().out
    assert "cuOpt notes of request" in out and "Optimal" in out


def test_remote_log_max_bytes_zero_logs_nothing(cuopt_conn, context, tmp_path, capfd):
    solve(cuopt_conn, tmp_path, lp(), remote_log_max_bytes=0).execute(context)
    assert "cuOpt notes of request" not in capfd.readouterr().out


def test_parameters_are_checked_when_the_task_is_built(tmp_path):
    from airflow_provider.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="on_infeasible"):
        CuOptSolveOperator(task_id="s", problem={}, output_uri="o", on_infeasible="ignore")
    with pytest.raises(InvalidInputError, match="remote_log_max_bytes"):
        CuOptSolveSensor(task_id="s", req_id="r", output_uri="o", remote_log_max_bytes=-1)


def test_sensor_pushes_the_summary_and_honours_on_infeasible(cuopt_conn, context, tmp_path):
    """The sensor meets a result the submitting task already stored (NVCF: 404 since)."""
    op = solve(cuopt_conn, tmp_path, INFEASIBLE, on_infeasible="succeed")
    req_id = op.execute(context)
    for policy, outcome in (("succeed", None), ("fail", InfeasibleError)):
        sensor = CuOptSolveSensor(
            task_id="w", req_id=req_id, output_uri=str(tmp_path) + "/", on_infeasible=policy, poll_seconds=1
        )
        if outcome is None:
            assert sensor.poke(context).xcom_value == [str(tmp_path / f"{req_id}.json")]
        else:
            with pytest.raises(outcome):
                sensor.poke(context)
        assert context["ti"].xcoms[SUMMARY_XCOM_KEY]["status"] == "infeasible"
