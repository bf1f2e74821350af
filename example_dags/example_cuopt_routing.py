"""Example DAG: a delivery-routing pipeline solved by NVIDIA cuOpt on NVIDIA Cloud Functions (NVCF).

1. ``build_problem`` turns the day's orders (here: synthetic customers with demand and delivery
   windows) into a cuOpt routing problem — cost matrix, task data, fleet data — and streams it to
   ``<work_uri>/<dag run>/problem.json``. At a few hundred customers the JSON is well over NVCF's
   250 KB inline limit, so it travels as a zlib-compressed asset.
2. ``solve_routes`` (:class:`~airflow_provider.operators.cuopt.CuOptSolveOperator`) uploads the
   asset and invokes cuOpt without waiting; its return value is the NVCF request id.
3. ``wait_for_routes`` (:class:`~airflow_provider.sensors.cuopt.CuOptSolveSensor`, deferrable)
   long-polls NVCF from the triggerer, stores the result under ``.../routes/`` the moment NVCF hands
   it out (it does so only once), deletes the input asset and returns the result path.
4. ``dispatch_routes`` reads the routes from that path, writes one CSV row per stop for the
   dispatch system, and returns a summary (vehicles used, total cost, stops served).

Connection ``cuopt_default`` (conn type ``cuopt``): password = NVCF API key (or extras
``client_id``/``client_secret``), extra ``function_name`` = ``cuopt``. For the local emulator:
``AIRFLOW_CONN_CUOPT_DEFAULT='{"conn_type": "cuopt", "host": "http://127.0.0.1:8765",
"password": "emulator-api-key", "extra": {"function_name": "cuopt"}}'``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import smart_open
from airflow.sdk import DAG, Param, task

from airflow_provider.operators.cuopt import CuOptSolveOperator
from airflow_provider.sensors.cuopt import CuOptSolveSensor

DAG_ID = "example_cuopt_routing"
DEFAULT_WORK_URI = str(Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "optimization-demo")


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-")


def _open(uri: str, mode: str):
    """Open a local path or any smart-open URI; creates local parent folders when writing."""
    if "w" in mode and (len(urlsplit(uri).scheme) <= 1 or uri.startswith("file://")):
        Path(urlsplit(uri).path if uri.startswith("file://") else uri).parent.mkdir(
            parents=True, exist_ok=True
        )
    return smart_open.open(uri, mode, encoding="utf-8")


RUN_FOLDER = "{{ params.work_uri.rstrip('/') }}/{{ run_id | slug }}"

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "cuopt", "nvcf", "optimization"],
    user_defined_filters={"slug": _slug},
    default_args={"cuopt_conn_id": "cuopt_default", "retries": 0},
    params={
        "work_uri": Param(DEFAULT_WORK_URI, type="string", description="Folder/URI for problems and routes."),
        "n_customers": Param(300, type="integer", minimum=1),
        "n_vehicles": Param(15, type="integer", minimum=1),
        "seed": Param(11, type="integer"),
    },
    doc_md=__doc__,
) as dag:

    @task
    def build_problem(run_folder: str, params: dict[str, Any] | None = None) -> str:
        """Build the routing problem from the day's orders and stream it to ``<run_folder>/problem.json``."""
        assert params is not None
        rng = random.Random(int(params["seed"]))
        n, fleet = int(params["n_customers"]), int(params["n_vehicles"])
        depot = (50.0, 50.0)
        sites = [depot] + [(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(n)]
        demand = [rng.randint(1, 9) for _ in range(n)]
        capacity = max(math.ceil(sum(demand) * 1.3 / fleet), max(demand))
        windows = []
        for x, y in sites[1:]:
            reach = math.ceil(math.dist(depot, (x, y)))
            start = max(reach, round(rng.uniform(0, 480)))
            windows.append([start, start + round(rng.uniform(120, 360))])
        horizon = max(end for _, end in windows) + 200
        uri = f"{run_folder}/problem.json"
        with _open(uri, "w") as out:
            # the matrix is written row by row: memory stays flat for large fleets of customers
            out.write('{"cost_matrix_data": {"data": {"0": [')
            for i, a in enumerate(sites):
                row = [round(math.dist(a, b), 2) for b in sites]
                out.write(("," if i else "") + json.dumps(row, separators=(",", ":")))
            task_data = {
                "task_locations": list(range(1, n + 1)),
                "task_ids": [f"order-{i + 1:05d}" for i in range(n)],
                "demand": [demand],
                "task_time_windows": windows,
                "service_times": [5] * n,
            }
            fleet_data = {
                "vehicle_locations": [[0, 0]] * fleet,
                "vehicle_ids": [f"truck-{v + 1:02d}" for v in range(fleet)],
                "capacities": [[capacity] * fleet],
                "vehicle_time_windows": [[0, horizon]] * fleet,
            }
            out.write("]}}, ")
            out.write('"task_data": ' + json.dumps(task_data, separators=(",", ":")) + ", ")
            out.write('"fleet_data": ' + json.dumps(fleet_data, separators=(",", ":")) + ", ")
            out.write('"solver_config": {"time_limit": 5}}')
        print(f"wrote a routing problem with {n} customers and {fleet} vehicles to {uri}")
        return uri

    problem_uri = build_problem(RUN_FOLDER)

    # [START howto_operator_cuopt_solve_no_wait]
    solve_routes = CuOptSolveOperator(
        task_id="solve_routes",
        problem_uri=problem_uri,  # > 250 KB: streamed, zlib-compressed, uploaded as an NVCF asset
        output_uri=RUN_FOLDER + "/routes/",  # where a result NVCF answers at once would be stored
        wait_for_completion=False,  # return the request id; the sensor below waits
        poll_seconds=1,
    )
    # [END howto_operator_cuopt_solve_no_wait]

    # [START howto_sensor_cuopt_deferrable]
    wait_for_routes = CuOptSolveSensor(
        task_id="wait_for_routes",
        req_id=solve_routes.output,
        asset_id="{{ ti.xcom_pull(task_ids='solve_routes', key='asset_id') }}",  # deleted afterwards
        output_uri=RUN_FOLDER + "/routes/",  # the result lands in <request id>.json
        deferrable=True,  # long-polls from the triggerer, no worker slot held
        poll_seconds=10,
        timeout=3600,
    )
    # [END howto_sensor_cuopt_deferrable]

    @task
    def dispatch_routes(result_paths: list[str]) -> dict[str, Any]:
        """Read cuOpt's routes, write ``<result>.stops.csv`` (one row per stop) and return a summary."""
        if not result_paths:
            raise ValueError("the sensor stored no result")
        result_uri = result_paths[0]
        with _open(result_uri, "r") as f:
            result = json.load(f)
        solution = result["response"]["solver_response"]
        stops_uri = re.sub(r"\.json$", "", result_uri) + ".stops.csv"
        served = 0
        with _open(stops_uri, "w") as f:
            writer = csv.writer(f)
            writer.writerow(["vehicle", "sequence", "task", "type", "arrival"])
            for vehicle, route in sorted(solution["vehicle_data"].items()):
                rows = zip(route["task_id"], route["type"], route["arrival_stamp"], strict=True)
                for seq, (task_id, kind, arrival) in enumerate(rows):
                    writer.writerow([vehicle, seq, task_id, kind, arrival])
                    served += kind in ("Delivery", "Pickup")  # not "Depot", "Break" or "w" (waiting)
        summary = {
            "result_uri": result_uri,
            "stops_uri": stops_uri,
            "vehicles_used": solution["num_vehicles"],
            "total_cost": round(float(solution["solution_cost"]), 2),
            "stops_served": served,
            "dropped": len((solution.get("dropped_tasks") or {}).get("task_id") or []),
        }
        print(json.dumps(summary, indent=2))
        return summary

    # [START howto_cuopt_pipeline]
    summary = dispatch_routes(wait_for_routes.output)
    problem_uri >> solve_routes >> wait_for_routes >> summary
    # [END howto_cuopt_pipeline]
