"""Property-based: malformed cuOpt problems and Nextmv inputs get clear errors, never crashes or hangs.

Each drawn problem goes the whole way a task sends it: local checks, then (if they pass) a real
invocation of the emulator's NVCF API, whose strict cuOpt models answer like the real container.
"""

from __future__ import annotations

import json
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider.events.cuopt import SolveEventStatus
from airflow_provider.hooks.cuopt import CuOptHook
from airflow_provider.hooks.cuopt_problems import prepare_problem
from airflow_provider.hooks.nextmv import NextmvHook

scalars = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-10, 10, allow_nan=False) | st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Shapes near the real models, so validation goes deep, plus arbitrary JSON.
problems = (
    st.fixed_dictionaries(
        {},
        optional={
            "cost_matrix_data": st.fixed_dictionaries(
                {"data": st.dictionaries(st.just("0"), values, max_size=1)}
            )
            | values,
            "task_data": st.fixed_dictionaries({"task_locations": st.lists(st.integers(-2, 4), max_size=4)})
            | values,
            "fleet_data": st.fixed_dictionaries(
                {"vehicle_locations": st.lists(st.lists(st.integers(-1, 3), max_size=3), max_size=3)}
            )
            | values,
            "csr_constraint_matrix": st.fixed_dictionaries(
                {
                    "offsets": st.lists(st.integers(-1, 4), max_size=4),
                    "indices": st.lists(st.integers(-1, 3), max_size=4),
                    "values": st.lists(st.floats(-5, 5, allow_nan=False), max_size=4),
                }
            )
            | values,
            "constraint_bounds": values,
            "objective_data": values,
            "variable_bounds": values,
            "solver_config": st.fixed_dictionaries({"time_limit": st.floats(0.01, 0.5)}),
        },
    )
    | values
)

COMMON = dict(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(**COMMON)
@given(problem=problems)
def test_malformed_cuopt_problems_fail_clearly(cuopt_conn, tmp_path, problem):
    hook = CuOptHook(cuopt_conn)
    try:
        with prepare_problem(problem) as prepared:
            invocation, asset_id = hook.submit(prepared, hook.resolve_function(), poll_seconds=5)
        event = (
            hook.wait_for_result(
                invocation.req_id, asset_id, str(tmp_path) + "/", deadline=time.time() + 30, poll_seconds=5
            )
            if invocation.pending
            else hook.outcome_event(invocation, asset_id, str(tmp_path) + "/")
        )
    except AirflowException as exc:  # refused locally or by the service, with a message
        assert str(exc)
        return
    if event.status is not SolveEventStatus.SUCCEEDED:
        assert event.message, event
        with pytest.raises(AirflowException):
            hook.finish(event)


@settings(**COMMON)
@given(payload=st.binary(max_size=300) | values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_nextmv_input_files_are_sent_or_refused_clearly(nextmv_conn, tmp_path, payload):
    path = tmp_path / "input.json"
    path.write_bytes(payload)
    try:
        run_id = NextmvHook(nextmv_conn).submit_run("echo", input_uri=str(path))
    except AirflowException as exc:
        assert "JSON" in str(exc) or "input" in str(exc)
        return
    assert run_id
