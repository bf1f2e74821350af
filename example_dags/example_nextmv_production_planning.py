"""Example DAG: an ETL-shaped production-planning pipeline solved on Nextmv Cloud.

1. ``extract_instance`` builds a production-planning instance (here: a synthetic one with
   50,000 products, about 7 MiB of JSON) and streams it to a file under ``params.work_uri``.
   Any smart-open URI works there (a local folder, ``s3://bucket/prefix``, ``gs://...``).
2. ``submit_plan`` (:class:`~airflow_provider.operators.nextmv.NextmvRunOperator`) sends the file to
   the Nextmv app ``params.app_id``, without waiting: inputs over Nextmv's inline limit are uploaded
   through a presigned URL. Its return value is the Nextmv run id.
3. ``wait_for_plan`` (:class:`~airflow_provider.sensors.nextmv.NextmvRunSensor`, deferrable) waits in
   the triggerer, without holding a worker slot, and writes the solution under ``.../output/``.
4. ``load_plan`` reads the solution from the path(s) the sensor returned, writes a small CSV summary
   next to it and returns the summary (total profit, number of products produced, ...).

Connection ``nextmv_default`` (conn type ``nextmv``): host = API endpoint, password = API key, e.g.
``AIRFLOW_CONN_NEXTMV_DEFAULT='{"conn_type": "nextmv", "host": "http://127.0.0.1:8765",
"password": "..."}'`` for the local emulator (``make emulator``), whose built-in app
``production-planning`` solves this model with HiGHS.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import smart_open
from airflow.sdk import DAG, Param, task

from airflow_provider.operators.nextmv import NextmvRunOperator
from airflow_provider.sensors.nextmv import NextmvRunSensor

DAG_ID = "example_nextmv_production_planning"
DEFAULT_WORK_URI = str(Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "optimization-demo")


def _slug(value: str) -> str:
    """``manual__2024-01-01T00:00:00+00:00`` -> ``manual__2024-01-01T00-00-00-00-00`` (safe in paths/keys)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-")


def _is_local(uri: str) -> bool:
    return len(urlsplit(uri).scheme) <= 1 or uri.startswith("file://")


def _open(uri: str, mode: str):
    """Open a local path or any smart-open URI; creates local parent folders when writing."""
    if "w" in mode and _is_local(uri):
        Path(urlsplit(uri).path if uri.startswith("file://") else uri).parent.mkdir(
            parents=True, exist_ok=True
        )
    return smart_open.open(uri, mode, encoding="utf-8")


# Every file of one DAG run lives under <work_uri>/<dag run id>/.
RUN_FOLDER = "{{ params.work_uri.rstrip('/') }}/{{ run_id | slug }}"

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "nextmv", "optimization"],
    user_defined_filters={"slug": _slug},
    default_args={"nextmv_conn_id": "nextmv_default", "retries": 0},
    params={
        "work_uri": Param(
            DEFAULT_WORK_URI, type="string", description="Folder/URI for inputs and solutions."
        ),
        "app_id": Param("production-planning", type="string", description="Nextmv application id."),
        "n_products": Param(50_000, type="integer", minimum=1),
        "n_resources": Param(10, type="integer", minimum=1),
        "seed": Param(7, type="integer"),
    },
    doc_md=__doc__,
) as dag:

    @task
    def extract_instance(run_folder: str, params: dict[str, Any] | None = None) -> str:
        """Build the instance and stream it to ``<run_folder>/input.json``; return that URI.

        A real pipeline would read orders, bills of materials and machine calendars here. The
        instance is written product by product, so memory stays flat whatever its size.
        """
        assert params is not None
        n_products, n_resources = int(params["n_products"]), int(params["n_resources"])
        rng = random.Random(int(params["seed"]))
        resources = [f"machine-{r + 1:02d}" for r in range(n_resources)]
        load = dict.fromkeys(resources, 0.0)  # what full demand would use
        uri = f"{run_folder}/input.json"
        with _open(uri, "w") as out:
            out.write('{"products": [')
            for p in range(n_products):
                usage = {r: round(rng.uniform(0.1, 5.0), 2) for r in rng.sample(resources, rng.randint(1, 3))}
                product = {
                    "id": f"product-{p + 1:06d}",
                    "profit": round(rng.uniform(1.0, 50.0), 2),
                    "max_demand": rng.randint(1, 100),
                    "usage": usage,
                    "description": f"SKU {p + 1:06d}, family {rng.choice('ABCDEFGH')}, made on {', '.join(usage)}",
                }
                for r, amount in usage.items():
                    load[r] += amount * product["max_demand"]
                out.write(("," if p else "") + json.dumps(product, separators=(",", ":")))
            # Capacities bind: about 40% of what producing every product's full demand would need.
            capacities = [{"id": r, "capacity": round(0.4 * load[r], 2)} for r in resources]
            out.write('], "resources": ' + json.dumps(capacities) + "}")
        print(f"wrote {n_products} products and {n_resources} resources to {uri}")
        return uri

    instance_uri = extract_instance(RUN_FOLDER)

    # [START howto_operator_nextmv_run_no_wait]
    submit_plan = NextmvRunOperator(
        task_id="submit_plan",
        app_id="{{ params.app_id }}",
        input_uri=instance_uri,  # large: uploaded through a presigned URL, streamed from the file
        options={"solve.duration": "60s"},
        name="production plan",
        wait_for_completion=False,  # return the run id at once; the sensor below waits
    )
    # [END howto_operator_nextmv_run_no_wait]

    # [START howto_sensor_nextmv_run_deferrable]
    wait_for_plan = NextmvRunSensor(
        task_id="wait_for_plan",
        app_id="{{ params.app_id }}",
        run_id=submit_plan.output,
        output_uri=RUN_FOLDER + "/output/",  # a folder: the solution lands in <nextmv run id>.json
        deferrable=True,  # waits in the triggerer, no worker slot held
        poke_interval=2.0,  # first poll delay; grows x1.5 up to max_poll_interval
        max_poll_interval=30.0,
        timeout=3600,
    )
    # [END howto_sensor_nextmv_run_deferrable]

    @task
    def load_plan(output_paths: list[str]) -> dict[str, Any]:
        """Read the solution the sensor stored, write ``<solution>.summary.csv`` next to it, return the summary."""
        if not output_paths:
            raise ValueError("the sensor wrote no output")
        # One JSON file for JSON apps; multi-file apps put solution.json among other files.
        json_paths = [p for p in output_paths if p.endswith(".json")]
        solution_uri = next((p for p in json_paths if p.endswith("solution.json")), None) or json_paths[0]
        with _open(solution_uri, "r") as f:
            output = json.load(f)
        solutions = output.get("solutions") or []
        if not solutions:
            raise ValueError(f"no solution in {solution_uri} (status {output.get('status')!r})")
        plan = solutions[0]["plan"]
        produced = [row for row in plan if row["quantity"] > 0]
        summary = {
            "solution_uri": solution_uri,
            "status": output.get("status"),
            "objective": output.get("statistics", {}).get("result", {}).get("value"),
            "total_profit": round(sum(row["profit"] for row in plan), 2),
            "products_planned": len(plan),
            "products_produced": len(produced),
            "units_produced": sum(row["quantity"] for row in produced),
        }
        summary_uri = re.sub(r"\.json$", "", solution_uri) + ".summary.csv"
        with _open(summary_uri, "w") as f:
            writer = csv.writer(f)
            writer.writerow(["metric", "value"])
            writer.writerows((k, v) for k, v in summary.items())
        summary["summary_uri"] = summary_uri
        print(json.dumps(summary, indent=2))
        return summary

    # [START howto_nextmv_pipeline]
    summary = load_plan(wait_for_plan.output)
    instance_uri >> submit_plan >> wait_for_plan >> summary
    # [END howto_nextmv_pipeline]
