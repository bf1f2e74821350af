"""Test-only DAGs for the reliability end-to-end tests (``tests/e2e/test_reliability.py``).

They run on the e2e Airflow stack next to ``example_dags/`` and talk to the *slow* emulator of
``tests/e2e/conftest.py`` (connections ``nextmv_slow``, ``cuopt_slow`` and ``cuopt_slow_cc``), whose
Nextmv app ``gated`` runs until the test opens a gate and whose NVCF requests stay pending for 25 s:
long enough to kill Airflow components while solves are in flight.

NVCF hands a result out once, to whichever status poll is waiting when it is ready — also to a
long poll whose client was just killed (its answer then goes nowhere). The cuOpt tasks here
therefore use short poll windows (5 s deferred, 2 s sync), so that the result is never ready
inside the window of the poll a kill cut off: these DAGs test re-attachment, not that hazard.

The only instrumentation is in this file (the provider is used unchanged): the ``Killable*``
subclasses write a small JSON file right after the operator's own ``_submit`` returned (the remote
run exists and is remembered in the task state store), with the task process' pid and the remote
ids, so that a test can SIGKILL exactly that process; with ``hold_after_submit`` they also sleep on
the first try, to open a window between submission and deferral.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param

from airflow_provider.operators.cuopt import CuOptSolveOperator
from airflow_provider.operators.nextmv import NextmvRunOperator

#: How many Nextmv runs wait in deferred tasks while the triggerer is killed.
N_DEFERRED_RUNS = 10
#: A tiny routing problem (cuOpt docs: 2 locations, 2 vehicles), sent inline.
TINY_ROUTING: dict[str, Any] = {
    "cost_matrix_data": {"data": {"0": [[0, 1], [1, 0]]}},
    "task_data": {"task_locations": [0, 1]},
    "fleet_data": {"vehicle_locations": [[0, 0], [0, 0]]},
    "solver_config": {"time_limit": 1},
}
START = datetime(2025, 1, 1)


def _signal(context: Any, what: str, **info: Any) -> None:
    """Write ``<signal_dir>/<task>[.<map index>].try<N>.<what>.json`` atomically (test instrumentation)."""
    signal_dir = (context.get("params") or {}).get("signal_dir")
    if not signal_dir:
        return
    ti = context["ti"]
    name = ti.task_id + (f".{ti.map_index}" if ti.map_index is not None and ti.map_index >= 0 else "")
    path = Path(signal_dir) / f"{name}.try{ti.try_number}.{what}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "time": time.time(), **info}))
    tmp.rename(path)


def _hold(operator: Any, context: Any) -> None:
    if operator.hold_after_submit and context["ti"].try_number == 1:
        operator.log.info("test instrumentation: holding %.0f s after submission", operator.hold_after_submit)
        time.sleep(operator.hold_after_submit)


class KillableNextmvRunOperator(NextmvRunOperator):
    """``NextmvRunOperator`` that reports its pid and run id once submitted (test instrumentation)."""

    def __init__(self, *, hold_after_submit: float = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_after_submit = hold_after_submit

    def _submit(self, context: Any) -> str:
        run_id = super()._submit(context)
        _signal(context, "submitted", run_id=run_id)
        _hold(self, context)
        return run_id


class KillableCuOptSolveOperator(CuOptSolveOperator):
    """``CuOptSolveOperator`` that reports its pid, request and asset ids once submitted."""

    def __init__(self, *, hold_after_submit: float = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_after_submit = hold_after_submit

    def _submit(self, context: Any) -> Any:
        invocation, asset_id = super()._submit(context)
        _signal(context, "submitted", req_id=invocation.req_id, asset_id=asset_id)
        _hold(self, context)
        return invocation, asset_id


def _params() -> dict[str, Param]:
    return {
        "work_dir": Param("/tmp/e2e-reliability", type="string", description="where outputs are written"),
        "signal_dir": Param("", type="string", description="test instrumentation: pid files go here"),
        "problem_uri": Param("", type="string", description="a cuOpt routing problem over 250 KB"),
    }


def _dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        params=_params(),
        tags=["e2e", "reliability"],
        **kwargs,
    )


#: What every Nextmv task here shares: the gated app on the slow emulator, quick polls.
NEXTMV = {
    "app_id": "gated",
    "nextmv_conn_id": "nextmv_slow",
    "wait_for_completion": True,
    "timeout": 600,
}

# 1. Triggerer restart: 10 Nextmv runs and 2 cuOpt requests wait in deferred tasks; the test
#    SIGKILLs the triggerer and starts a new one, which must take the triggers over.
with _dag("e2e_triggerer_restart", default_args={"retries": 0}, max_active_tasks=32):
    NextmvRunOperator.partial(
        task_id="nextmv",
        **NEXTMV,
        deferrable=True,
        poll_interval=2,
        max_poll_interval=4,
        output_uri="{{ params.work_dir }}/nextmv/",
        priority_weight=10,  # defer first; the cuOpt tasks (25 s per request) submit last
    ).expand(input=[{"index": i, "payload": f"deferred run {i}"} for i in range(N_DEFERRED_RUNS)])

    for task_id, problem in (
        ("cuopt_inline", {"problem": TINY_ROUTING}),
        ("cuopt_asset", {"problem_uri": "{{ params.problem_uri }}"}),
    ):
        CuOptSolveOperator(
            task_id=task_id,
            **problem,
            output_uri=f"{{{{ params.work_dir }}}}/{task_id}/",
            cuopt_conn_id="cuopt_slow_cc",  # client credentials: JWTs in the worker and the triggerer
            wait_for_completion=True,
            deferrable=True,
            poll_seconds=5,
            timeout=600,
            priority_weight=1,
        )

# 2. Worker killed between submission and completion: the retry must re-attach, not resubmit.
with _dag("e2e_worker_kill", default_args={"retries": 1, "retry_delay": timedelta(seconds=1)}):
    for task_id, deferrable in (("nextmv_sync", False), ("nextmv_deferrable", True)):
        KillableNextmvRunOperator(
            task_id=task_id,
            **NEXTMV,
            input={"scenario": task_id},
            deferrable=deferrable,
            # the deferrable one is killed in this window: submitted, not deferred yet
            hold_after_submit=120 if deferrable else 0,
            poll_interval=1,
            max_poll_interval=2,
            output_uri=f"{{{{ params.work_dir }}}}/{task_id}/",
        )
    KillableCuOptSolveOperator(
        task_id="cuopt_sync",
        problem_uri="{{ params.problem_uri }}",  # > 250 KB: an NVCF asset that must not leak
        output_uri="{{ params.work_dir }}/cuopt_sync/",
        cuopt_conn_id="cuopt_slow",  # NVCF API key
        wait_for_completion=True,
        deferrable=False,
        poll_seconds=2,
        timeout=600,
    )
