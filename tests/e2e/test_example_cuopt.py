"""``example_cuopt_routing`` end to end on a real Airflow stack and a real emulator (NVCF + cuOpt).

What a unit test cannot show: the DAG file parses in the dag-processor; the worker streams the
> 250 KB problem through zlib into an NVCF asset and invokes cuOpt once, without waiting; the
sensor defers and its trigger is imported and run by the *triggerer* process, which receives the
once-only result, stores it where the sensor says and deletes the asset; the downstream task reads
exactly that file. The session emulator keeps every NVCF request pending for 5 s (see conftest) and
the operator polls for 1 s, so the request is always still pending when the operator returns.
"""

from __future__ import annotations

import csv
import json
import time
import zlib
from pathlib import Path

import pytest
import requests

from optimization_emulator.testing.airflow_stack import AirflowApiError
from optimization_emulator.testing.cuopt import check_routing

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAG_ID = "example_cuopt_routing"
RUN_ID = "e2e-cuopt-routing"
INLINE_LIMIT = 250_000  # NVCF: bigger problems must travel as an asset
N_CUSTOMERS, N_VEHICLES = 300, 15  # the DAG's default params


def _delta(before: dict, after: dict, key: str) -> int:
    return after["nvcf"][key] - before["nvcf"][key]


def test_cuopt_routing_pipeline(airflow_stack, e2e_emulator, tmp_path):
    stack, emulator = airflow_stack, e2e_emulator
    work = tmp_path / "work"
    before, t0 = emulator.stats(), time.time()

    run = stack.run_dag(DAG_ID, RUN_ID, conf={"work_uri": str(work)}, timeout=240)
    assert run["state"] == "success", stack.failure_report(DAG_ID, RUN_ID)
    after = emulator.stats()
    assert stack.task_states(DAG_ID, RUN_ID) == {
        "build_problem": "success",
        "solve_routes": "success",
        "wait_for_routes": "success",
        "dispatch_routes": "success",
    }

    # (a) the build task wrote a problem too large to go inline, where the params said
    run_folder = work / RUN_ID
    problem_path = Path(stack.xcom(DAG_ID, RUN_ID, "build_problem"))
    assert problem_path == run_folder / "problem.json"
    problem_bytes = problem_path.read_bytes()
    assert len(problem_bytes) > INLINE_LIMIT
    problem = json.loads(problem_bytes)
    assert len(problem["task_data"]["task_locations"]) == N_CUSTOMERS
    assert len(problem["fleet_data"]["vehicle_locations"]) == N_VEHICLES

    # (b) exactly one invocation, through one asset: the whole file, zlib-compressed (level 1, as
    # documented), uploaded without credentials; the invocation itself only references it
    assert _delta(before, after, "invocations") == 1, after
    assert _delta(before, after, "assets_created") == 1, after
    assert _delta(before, after, "uploads") == 1, after
    assert _delta(before, after, "upload_bytes") == len(zlib.compress(problem_bytes, 1)), after
    assert _delta(before, after, "assets_deleted") == 1, after
    assert after["nvcf"]["assets_live"] == [], after
    assert after["nvcf"]["requests_pending"] == 0, after
    assert _delta(before, after, "results_delivered") == 1, after
    assert _delta(before, after, "large_results") == 0, after
    log = [r for r in emulator.requests_log() if r["time"] >= t0]
    invokes = [r for r in log if r["method"] == "POST" and "/exec/functions/" in (r["route"] or "")]
    assert len(invokes) == 1 and invokes[0]["status"] == 202, invokes
    assert invokes[0]["content_length"] < 10_000, invokes  # a reference, not the problem
    puts = [r for r in log if r["method"] == "PUT" and "/nvcf/assets/" in (r["route"] or "")]
    assert len(puts) == 1 and not puts[0]["authorization"], puts

    # the operator returned the request id while the request was still pending (1 s poll window,
    # 5 s queue delay): it stored nothing itself
    req_id = stack.xcom(DAG_ID, RUN_ID, "solve_routes")
    assert stack.xcom(DAG_ID, RUN_ID, "solve_routes", key="req_id") == req_id
    asset_id = stack.xcom(DAG_ID, RUN_ID, "solve_routes", key="asset_id")
    assert isinstance(asset_id, str) and asset_id, asset_id
    with pytest.raises(AirflowApiError) as no_paths:
        stack.xcom(DAG_ID, RUN_ID, "solve_routes", key="output_paths")
    assert no_paths.value.status == 404
    solve_log = "\n".join(p.read_text() for p in stack.task_log_paths(DAG_ID, RUN_ID, "solve_routes"))
    assert f"NVCF request {req_id} accepted (input asset {asset_id})" in solve_log, solve_log[-3000:]

    # (c) the sensor deferred; its trigger ran in the triggerer, received the result, stored it and
    # deleted the asset before firing
    sensor_log = "\n".join(p.read_text() for p in stack.task_log_paths(DAG_ID, RUN_ID, "wait_for_routes"))
    assert "Pausing task as DEFERRED" in sensor_log, sensor_log[-3000:]
    trigger_logs = stack.trigger_log_paths(DAG_ID, RUN_ID, "wait_for_routes")
    assert trigger_logs, f"no trigger log: the trigger never ran in the triggerer\n{stack.tail('triggerer')}"
    trigger_log = "\n".join(p.read_text() for p in trigger_logs)
    assert "triggerer_job_runner" in trigger_log, trigger_log[-3000:]
    fired = [line for line in trigger_log.splitlines() if "Trigger fired event" in line]
    assert len(fired) == 1 and req_id in fired[0] and "'succeeded'" in fired[0], trigger_log[-3000:]
    assert f"Deleted NVCF asset {asset_id}" in trigger_log, trigger_log[-3000:]
    assert f"NVCF request {req_id} (asset {asset_id}): succeeded" in trigger_log, trigger_log[-3000:]

    # NVCF hands a result out once: the trigger took it, nothing is left to fetch
    gone = requests.get(
        f"{emulator.nvcf_url}/exec/status/{req_id}",
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=10,
    )
    assert gone.status_code == 404, gone.text

    # ... and the result landed where the sensor's XCom says, named after the request
    result_paths = stack.xcom(DAG_ID, RUN_ID, "wait_for_routes")
    assert result_paths == [str(run_folder / "routes" / f"{req_id}.json")]
    result_path = Path(result_paths[0])
    with result_path.open() as f:
        result = json.load(f)
    # the routes are a valid answer to that very problem (recomputed independently)
    solution = check_routing(problem, result["response"])
    assert str(result_path) in fired[0], fired[0]

    # (d) the downstream task read that very file: its summary is what the file says
    summary = stack.xcom(DAG_ID, RUN_ID, "dispatch_routes")
    routes = solution["vehicle_data"]
    served = {
        t for r in routes.values() for t, kind in zip(r["task_id"], r["type"], strict=True) if kind != "Depot"
    }
    dropped = solution["dropped_tasks"]["task_id"]
    assert summary["result_uri"] == str(result_path)
    assert summary["vehicles_used"] == solution["num_vehicles"] == len(routes) <= N_VEHICLES
    assert summary["total_cost"] == pytest.approx(solution["solution_cost"], abs=0.005)
    assert summary["stops_served"] == len(served) == N_CUSTOMERS - len(dropped)
    assert summary["dropped"] == len(dropped)

    # ... and wrote one CSV row per stop next to it
    stops_csv = Path(summary["stops_uri"])
    assert stops_csv == result_path.with_name(f"{req_id}.stops.csv")
    with stops_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(r["task_id"]) for r in routes.values())
    assert {row["task"] for row in rows if row["type"] != "Depot"} == served
    for vehicle, route in routes.items():
        mine = [row for row in rows if row["vehicle"] == vehicle]
        assert [row["task"] for row in mine] == route["task_id"]
        assert [float(row["arrival"]) for row in mine] == pytest.approx(route["arrival_stamp"])

    # the sensor resumed in a worker after the trigger fired, and pushed the stored path
    resumed = sensor_log.find("Pushing xcom", sensor_log.find("Pausing task as DEFERRED"))
    assert resumed > 0, sensor_log[-3000:]
