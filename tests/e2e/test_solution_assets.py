"""``example_solution_assets`` on a real Airflow stack: solves become asset events and OpenLineage.

What only a real stack shows: the scheduler records the worker's outlet events (with the solve's
extra, and the alias's run-time asset), a DAG scheduled on the solution asset is started by that
event and reads it, and the OpenLineage provider's listener — configured with its file transport in
``conftest.py`` — emits the input/output files (from hook lineage) and the Nextmv run id (run facet).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

DAG_ID = "example_solution_assets"
CONSUMER = "example_solution_assets_consumer"
RUN_ID = "e2e-assets"
SLUG = re.sub(r"[^A-Za-z0-9._-]+", "-", RUN_ID).strip("-")


def _wait(fn, timeout: float, what: str, stack):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := fn()) is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} after {timeout} s\n{stack.tails(30)}")


def _ol_event(path: Path, job: str, event_type: str):
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("eventType") == event_type and event.get("job", {}).get("name") == job:
            return event
    return None


def test_solutions_become_asset_events_lineage_and_start_the_consumer(airflow_stack, openlineage_events):
    stack = airflow_stack
    work = stack.home / "optimization-demo" / "assets"
    latest = work / "latest_knapsack_plan.json"
    run_folder = work / "runs" / SLUG

    run = stack.run_dag(DAG_ID, RUN_ID, timeout=150)
    assert run["state"] == "success", stack.failure_report(DAG_ID, RUN_ID)
    latest_run = stack.xcom(DAG_ID, RUN_ID, "solve_latest", key="run_id")
    archived_run = stack.xcom(DAG_ID, RUN_ID, "solve_archived", key="run_id")
    archived = run_folder / f"{archived_run}.json"
    assert stack.xcom(DAG_ID, RUN_ID, "solve_latest", key="output_paths") == [str(latest)]
    assert stack.xcom(DAG_ID, RUN_ID, "solve_archived", key="output_paths") == [str(archived)]

    # (a) one asset event per written output, each with the solve's facts as extra
    events = stack.api("GET", f"/api/v2/assets/events?source_dag_id={DAG_ID}&source_run_id={RUN_ID}")
    by_task = {e["source_task_id"]: e for e in events["asset_events"]}
    assert set(by_task) == {"solve_latest", "solve_archived"}, events
    assert by_task["solve_latest"]["uri"] == f"file://{latest}"
    summary = stack.xcom(DAG_ID, RUN_ID, "solve_latest", key="solution_summary")
    assert summary["status"] == "optimal" and summary["objective"] is not None
    assert by_task["solve_latest"]["extra"] == {  # what the solution_summary says, in brief
        "service": "nextmv",
        "run_id": latest_run,
        "status": summary["status"],
        "objective": summary["objective"],
    }
    # the alias resolved at run time to the file the templated output_uri produced
    assert by_task["solve_archived"]["uri"] == f"file://{archived}"
    assert by_task["solve_archived"]["extra"]["run_id"] == archived_run
    assert by_task["solve_archived"]["extra"]["status"] == "optimal"

    # (b) the DAG scheduled on the solution asset ran because of that event, and read it
    def consumer_done():
        runs = stack.api("GET", f"/api/v2/dags/{CONSUMER}/dagRuns")["dag_runs"]
        finished = [r for r in runs if r["state"] in ("success", "failed")]
        return finished or None

    consumer_runs = _wait(consumer_done, 60, f"{CONSUMER} never ran", stack)
    assert len(consumer_runs) == 1, consumer_runs
    consumer_run = consumer_runs[0]
    assert consumer_run["state"] == "success", stack.failure_report(CONSUMER, consumer_run["dag_run_id"])
    assert consumer_run["run_type"] == "asset_triggered"
    created = by_task["solve_latest"]["created_dagruns"]
    assert [r["run_id"] for r in created] == [consumer_run["dag_run_id"]], created
    published = stack.xcom(CONSUMER, consumer_run["dag_run_id"], "publish_plan")
    assert published["solve"] == by_task["solve_latest"]["extra"]
    assert published["value"] == 26  # tent + stove + lamp + rope: 14 of 15 weight
    assert published["items"] == ["lamp", "rope", "stove", "tent"]

    # (c) OpenLineage: datasets from hook lineage, the run id as the externalQuery run facet
    ol_path = openlineage_events
    complete = _wait(
        lambda: _ol_event(ol_path, f"{DAG_ID}.solve_archived", "COMPLETE"),
        30,
        f"no OpenLineage COMPLETE event of solve_archived in {ol_path}",
        stack,
    )
    datasets = lambda key: [(d["namespace"], d["name"]) for d in complete[key]]  # noqa: E731
    assert datasets("inputs") == [("file", str(run_folder / "input.json"))], complete["inputs"]
    assert datasets("outputs") == [("file", str(archived))], complete["outputs"]
    facets = complete["run"]["facets"]
    assert facets["externalQuery"]["externalQueryId"] == archived_run
    assert facets["externalQuery"]["source"].startswith("nextmv://127.0.0.1:")
    assert facets["optimizationSolve"]["runId"] == archived_run
    assert facets["optimizationSolve"]["status"] == "optimal"

    latest_complete = _ol_event(ol_path, f"{DAG_ID}.solve_latest", "COMPLETE")
    assert latest_complete is not None
    assert [(d["namespace"], d["name"]) for d in latest_complete["outputs"]] == [("file", str(latest))]
    assert latest_complete["inputs"] == []  # inline input: no dataset
    assert latest_complete["run"]["facets"]["externalQuery"]["externalQueryId"] == latest_run
