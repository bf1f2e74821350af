"""``example_nextmv_production_planning`` end to end on a real Airflow stack and a real emulator.

What a unit test cannot show: the DAG file parses in the dag-processor, the worker submits through
the upload path, the sensor's trigger is imported and run by the *triggerer* process, the
solution lands where the sensor says, and the downstream task reads exactly that file.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAG_ID = "example_nextmv_production_planning"
RUN_ID = "e2e-production-planning"
APP_ID = "production-planning"
UPLOAD_THRESHOLD = 5 * 1024 * 1024  # inputs over 5 MiB must take the presigned-upload path


def _delta(before: dict, after: dict, key: str) -> int:
    return after["nextmv"][key] - before["nextmv"][key]


def test_production_planning_pipeline(airflow_stack, e2e_emulator, tmp_path):
    stack, emulator = airflow_stack, e2e_emulator
    work = tmp_path / "work"
    before = emulator.stats()

    run = stack.run_dag(DAG_ID, RUN_ID, conf={"work_uri": str(work)}, timeout=240)
    assert run["state"] == "success", stack.failure_report(DAG_ID, RUN_ID)
    after = emulator.stats()
    assert stack.task_states(DAG_ID, RUN_ID) == {
        "extract_instance": "success",
        "submit_plan": "success",
        "wait_for_plan": "success",
        "load_plan": "success",
    }

    # (a) the extract task honoured the params and wrote a large instance there
    run_folder = work / RUN_ID
    input_path = Path(stack.xcom(DAG_ID, RUN_ID, "extract_instance"))
    assert input_path == run_folder / "input.json"
    assert input_path.stat().st_size > UPLOAD_THRESHOLD
    with input_path.open() as f:
        instance = json.load(f)
    assert len(instance["products"]) == 50_000 and len(instance["resources"]) == 10

    # (b) exactly one run was submitted, through the upload path, with the whole file
    assert _delta(before, after, "runs_created") == 1, after
    assert _delta(before, after, "uploads") == 1, after
    assert _delta(before, after, "upload_bytes") == input_path.stat().st_size, after
    nextmv_run_id = stack.xcom(DAG_ID, RUN_ID, "submit_plan")
    assert stack.xcom(DAG_ID, RUN_ID, "submit_plan", key="run_id") == nextmv_run_id
    remote = requests.get(
        f"{emulator.url}/v1/applications/{APP_ID}/runs/{nextmv_run_id}/metadata",
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=10,
    )
    remote.raise_for_status()
    assert remote.json()["metadata"]["status_v2"] == "succeeded", remote.json()
    assert remote.json()["metadata"]["input_size"] == input_path.stat().st_size

    # (c) the sensor deferred, and its trigger ran in the triggerer process and fired
    sensor_log = "\n".join(p.read_text() for p in stack.task_log_paths(DAG_ID, RUN_ID, "wait_for_plan"))
    assert "Pausing task as DEFERRED" in sensor_log, sensor_log[-3000:]
    trigger_logs = stack.trigger_log_paths(DAG_ID, RUN_ID, "wait_for_plan")
    assert trigger_logs, f"no trigger log: the trigger never ran in the triggerer\n{stack.tail('triggerer')}"
    trigger_log = "\n".join(p.read_text() for p in trigger_logs)
    assert "Trigger fired event" in trigger_log and nextmv_run_id in trigger_log, trigger_log[-3000:]
    assert "succeeded" in trigger_log, trigger_log[-3000:]

    # ... and stored the solution where output_uri said, named after the run
    output_paths = stack.xcom(DAG_ID, RUN_ID, "wait_for_plan")
    assert output_paths == [str(run_folder / "output" / f"{nextmv_run_id}.json")]
    solution_path = Path(output_paths[0])
    with solution_path.open() as f:
        solution = json.load(f)
    assert solution["status"] == "optimal"
    # (d) the worker's completion on resume: the run log in the task log, the solution summary
    assert f"Nextmv run log of {nextmv_run_id}" in sensor_log, sensor_log[-3000:]
    run_summary = stack.xcom(DAG_ID, RUN_ID, "wait_for_plan", key="solution_summary")
    assert run_summary["status"] == "optimal" and run_summary["run_id"] == nextmv_run_id, run_summary
    assert run_summary["objective"] == pytest.approx(solution["statistics"]["result"]["value"])
    plan = solution["solutions"][0]["plan"]
    assert len(plan) == 50_000

    # (d) the downstream task read that very file: its summary is what the file says
    summary = stack.xcom(DAG_ID, RUN_ID, "load_plan")
    produced = [row for row in plan if row["quantity"] > 0]
    assert summary["solution_uri"] == str(solution_path)
    assert summary["status"] == "optimal"
    assert summary["objective"] == pytest.approx(solution["statistics"]["result"]["value"])
    assert summary["total_profit"] == pytest.approx(sum(row["profit"] for row in plan), abs=0.01)
    assert summary["total_profit"] == pytest.approx(summary["objective"], rel=1e-9)
    assert summary["products_planned"] == len(plan)
    assert summary["products_produced"] == len(produced) > 0
    assert summary["units_produced"] == sum(row["quantity"] for row in produced)
    # the plan respects the instance it was solved from (same products, within demand)
    demand = {p["id"]: p["max_demand"] for p in instance["products"]}
    assert all(0 <= row["quantity"] <= demand[row["product"]] for row in plan)

    summary_csv = Path(summary["summary_uri"])
    assert summary_csv == solution_path.with_name(f"{nextmv_run_id}.summary.csv")
    with summary_csv.open(newline="") as f:
        rows = dict(csv.reader(f))
    assert rows["metric"] == "value"
    assert int(rows["products_produced"]) == summary["products_produced"]
    assert float(rows["total_profit"]) == pytest.approx(summary["total_profit"])

    # the worker tasks ran in the worker, not inline: the sensor resumed after the trigger fired
    assert re.search(r"Nextmv run \S+ succeeded", sensor_log), sensor_log[-3000:]
