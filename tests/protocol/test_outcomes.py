"""The pure parts of solve outcomes: status words, the summary schema, each service's mapping and the
outcome policy. The operator tests (tests/operators/test_*_outcomes.py) prove the same over sockets."""

from __future__ import annotations

import json

import ijson
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider.events.summary import MAX_METRICS_BYTES, SolutionSummary, SolveStatus, status_from_word
from airflow_provider.exceptions import (
    InfeasibleError,
    InvalidProblemError,
    RunFailedError,
    RunTimeoutError,
    ServiceHTTPError,
    ServiceRejectedError,
    http_error_class,
)
from airflow_provider.protocol import cuopt_results, outcomes
from airflow_provider.protocol.nextmv_summary import nextmv_summary


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("Optimal", SolveStatus.OPTIMAL),
        ("FeasibleFound", SolveStatus.FEASIBLE),
        ("PrimalFeasible", SolveStatus.FEASIBLE),
        ("TimeLimit", SolveStatus.TIME_LIMIT),
        ("time_limit", SolveStatus.TIME_LIMIT),
        ("IterationLimit", SolveStatus.ITERATION_LIMIT),
        ("PrimalInfeasible", SolveStatus.INFEASIBLE),
        ("Infeasible", SolveStatus.INFEASIBLE),
        ("DualInfeasible", SolveStatus.UNBOUNDED),
        ("Unbounded", SolveStatus.UNBOUNDED),
        ("NoTermination", SolveStatus.ERROR),
        ("something new", None),
        (3, None),
    ],
)
def test_status_words(word, status):
    assert status_from_word(word) is status


def test_summary_is_json_and_drops_non_finite_numbers_and_big_metrics():
    summary = SolutionSummary(
        service="nextmv",
        run_id="r",
        status=SolveStatus.OPTIMAL,
        objective=float("inf"),
        gap=0.5,
        metrics={"blob": "x" * (MAX_METRICS_BYTES + 1)},
    )
    value = json.loads(json.dumps(summary.to_xcom(), allow_nan=False))
    assert value["status"] == "optimal" and value["objective"] is None and value["gap"] == 0.5
    assert set(value["metrics"]) == {"omitted"}


LP_RESULT = {
    "response": {
        "solver_response": {
            "status": "FeasibleFound",
            "solution": {
                "problem_category": "MIP",
                "primal_solution": [1.0] * 50,
                "primal_objective": 42.0,
                "solver_time": 0.5,
                "milp_statistics": {"mip_gap": 0.01, "solution_bound": 41.5},
                "lp_statistics": {},
            },
        },
        "total_solve_time": 0.7,
    },
    "warnings": ["ignored setting"],
    "notes": ["Feasible"],
}
ROUTING_RESULT = {
    "response": {
        "solver_response": {"status": 0, "num_vehicles": 1, "solution_cost": 2.0, "vehicle_data": {}}
    },
    "notes": [],
}
ROUTING_INFEASIBLE = {"response": {"solver_infeasible_response": {"status": 1, "solution_cost": 9.0}}}
BATCH = {
    "response": {"solver_response": [{"status": "Optimal", "solution": {}}, {"status": "PrimalInfeasible"}]}
}


def streamed(result):
    builder = cuopt_results.StreamingSummary()
    for event in ijson.parse(json.dumps(result).encode()):
        builder.send(event)
    return builder.summary


@pytest.mark.parametrize("result", [LP_RESULT, ROUTING_RESULT, ROUTING_INFEASIBLE, BATCH, {"error": "bad"}])
def test_cuopt_summary_is_the_same_from_a_dict_and_from_a_stream(result):
    as_dict = cuopt_results.summary_of_result(result, service="cuopt-nvcf", run_id="q")
    as_stream = cuopt_results.cuopt_summary(streamed(result), service="cuopt-nvcf", run_id="q")
    assert as_dict == as_stream


def test_cuopt_summary_fields():
    lp = cuopt_results.summary_of_result(
        LP_RESULT, service="cuopt-nvcf", run_id="q", output_paths=["/o.json"]
    )
    assert (lp.status, lp.objective, lp.best_bound, lp.gap, lp.solve_time_s, lp.problem_kind) == (
        SolveStatus.FEASIBLE,
        42.0,
        41.5,
        0.01,
        0.7,
        "MIP",
    )
    assert lp.output_paths == ("/o.json",) and lp.message == ""
    routing = cuopt_results.summary_of_result(ROUTING_RESULT, service="s", run_id="q")
    assert (routing.status, routing.objective, routing.problem_kind) == (SolveStatus.FEASIBLE, 2.0, "routing")
    infeasible = cuopt_results.summary_of_result(ROUTING_INFEASIBLE, service="s", run_id="q")
    assert infeasible.status is SolveStatus.INFEASIBLE and "infeasible" in infeasible.message
    assert cuopt_results.summary_of_result(BATCH, service="s", run_id="q").status is SolveStatus.INFEASIBLE


def test_nextmv_summary_reads_metrics_then_statistics():
    meta = {
        "metadata": {
            "application_instance_id": "prod",
            "application_version_id": "v3",
            "execution_class": "6c9500mb870s",
            "execution_duration": 2500,
            "statistics": {"result": {"value": 7.0, "custom": {"status": "time_limit", "gap": 0.1}}},
            "metrics": None,
        }
    }
    old = nextmv_summary(meta, app_id="a", run_id="r", run_status=SolveStatus.SUCCEEDED, link="L")
    assert (old.status, old.objective, old.gap, old.solve_time_s) == (SolveStatus.TIME_LIMIT, 7.0, 0.1, 2.5)
    assert (old.instance_id, old.version_id, old.execution_class, old.link) == (
        "prod",
        "v3",
        "6c9500mb870s",
        "L",
    )
    meta["metadata"]["metrics"] = {"result": {"value": 0.0, "status": "optimal"}}
    new = nextmv_summary(meta, app_id="a", run_id="r", run_status=SolveStatus.SUCCEEDED)
    assert (new.status, new.objective) == (SolveStatus.OPTIMAL, 0.0)  # zero is an objective too
    failed = nextmv_summary(meta, app_id="a", run_id="r", run_status=SolveStatus.ERROR)
    assert failed.status is SolveStatus.ERROR  # the app's words only refine a success
    assert nextmv_summary(None, app_id="a", run_id="r", run_status=SolveStatus.TIMEOUT).objective is None


@pytest.mark.parametrize(
    ("status", "policy", "error"),
    [
        (SolveStatus.OPTIMAL, "fail", None),
        (SolveStatus.TIME_LIMIT, "fail", None),
        (SolveStatus.INFEASIBLE, "fail", InfeasibleError),
        (SolveStatus.UNBOUNDED, "fail", InfeasibleError),
        (SolveStatus.INFEASIBLE, "succeed", None),
        (SolveStatus.INVALID, "succeed", InvalidProblemError),
        (SolveStatus.ERROR, "fail", RunFailedError),
        (SolveStatus.ITERATION_LIMIT, "fail", RunFailedError),
        (SolveStatus.CANCELED, "fail", RunFailedError),
        (SolveStatus.TIMEOUT, "fail", RunTimeoutError),
    ],
)
def test_outcome_policy(status, policy, error):
    found = outcomes.failure_for(status, policy, "why")
    if error is None:
        assert found is None
        return
    assert type(found) is error
    permanent = error in (InfeasibleError, InvalidProblemError)
    assert isinstance(found, AirflowFailException) is permanent


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("app exited with status 2: error: invalid input: items: Input should be a valid list", "invalid"),
        ("invalid json input: not a gzip file", "invalid"),
        ("app killed by signal 9 (no output on stderr)", "error"),
        ("infeasible: demand exceeds capacity", "error"),
    ],
)
def test_nextmv_failure_classification(message, status):
    assert outcomes.nextmv_failure_status(message).value == status


@pytest.mark.parametrize(
    ("code", "permanent"),
    [(400, True), (404, True), (422, True), (408, False), (429, False), (500, False), (503, False)],
)
def test_http_errors(code, permanent):
    error = http_error_class(code)("S", "GET", "/x", code)
    assert isinstance(error, ServiceHTTPError) and error.status_code == code
    assert isinstance(error, ServiceRejectedError) is permanent is isinstance(error, AirflowFailException)
    assert outcomes.invalid_problem_code(code) is (code in (400, 422))
