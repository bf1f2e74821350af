"""Example DAGs: a solve publishes its solution as an Airflow Asset; a second DAG runs on that asset.

``example_solution_assets`` solves a small knapsack on Nextmv Cloud twice:

1. ``solve_latest`` writes the solution to one fixed file, declared as the task's outlet
   ``Asset(LATEST_PLAN)``. When the task succeeds, Airflow records an asset event for it whose
   ``extra`` holds the solve's facts: ``service``, ``run_id``, ``status``, ``objective``.
2. ``write_instance`` writes the same instance to ``<run folder>/input.json``, and
   ``solve_archived`` solves it from there, writing to the same templated folder (one per DAG run). A templated URI cannot be
   declared up front, so the outlet is ``AssetAlias("optimization-solutions")``: the operator adds
   ``Asset(<file it wrote>)`` to the alias, with the same ``extra``.

``example_solution_assets_consumer`` is scheduled on ``Asset(LATEST_PLAN)``: it runs after every
successful ``solve_latest`` and reads the solve's facts from the triggering asset event, and the
solution from the asset's file — no XCom, no ``ExternalTaskSensor``.

With the OpenLineage provider installed (extra ``openlineage``) and a transport configured, the
solve tasks' OpenLineage events carry the input and output files as datasets and the Nextmv run id as the
``externalQuery`` run facet, with no code here.

Connection ``nextmv_default`` (conn type ``nextmv``), e.g. the local emulator (``make emulator``),
whose built-in app ``knapsack`` solves this model with HiGHS.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, task

from airflow_provider.operators.nextmv import NextmvRunOperator

WORK = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "optimization-demo" / "assets"
#: The fixed file the latest plan is written to, and the asset downstream DAGs are scheduled on.
LATEST_PLAN = Asset(f"file://{WORK}/latest_knapsack_plan.json")
#: Where solutions with run-dependent names are announced.
SOLUTIONS = AssetAlias("optimization-solutions")

ITEMS = {
    "capacity": 15,
    "items": [
        {"id": "tent", "value": 10, "weight": 5},
        {"id": "stove", "value": 7, "weight": 4},
        {"id": "rope", "value": 3, "weight": 2},
        {"id": "lamp", "value": 6, "weight": 3},
        {"id": "chair", "value": 4, "weight": 6},
    ],
}


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-")


with DAG(
    dag_id="example_solution_assets",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "nextmv", "assets"],
    user_defined_filters={"slug": _slug},
    default_args={"nextmv_conn_id": "nextmv_default", "retries": 0},
    doc_md=__doc__,
):
    # [START howto_operator_nextmv_asset_outlet]
    NextmvRunOperator(
        task_id="solve_latest",
        app_id="knapsack",
        input=ITEMS,
        output_uri=LATEST_PLAN.uri,  # the written file is the declared asset
        outlets=[LATEST_PLAN],
        poll_interval=1,
    )
    # [END howto_operator_nextmv_asset_outlet]

    run_folder = f"{WORK}/runs/{{{{ run_id | slug }}}}"

    @task
    def write_instance(folder: str) -> str:
        """The instance as a file: its path becomes the solve's input dataset in OpenLineage."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = f"{folder}/input.json"
        Path(path).write_text(json.dumps(ITEMS), encoding="utf-8")
        return path

    # [START howto_operator_nextmv_asset_alias]
    NextmvRunOperator(
        task_id="solve_archived",
        app_id="knapsack",
        input_uri=write_instance(run_folder),
        output_uri=run_folder + "/",  # <nextmv run id>.json inside
        outlets=[SOLUTIONS],  # receives Asset(<the file written>) at run time
        poll_interval=1,
    )
    # [END howto_operator_nextmv_asset_alias]


with DAG(
    dag_id="example_solution_assets_consumer",
    schedule=[LATEST_PLAN],  # runs after each successful solve_latest
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "assets"],
    doc_md=__doc__,
):

    @task(inlets=[LATEST_PLAN])
    def publish_plan(triggering_asset_events=None) -> dict[str, Any]:
        """What the solve said (the event's extra) and what it found (the asset's file)."""
        events = (triggering_asset_events or {}).get(LATEST_PLAN) or []
        if not events:
            raise ValueError(f"started without an event of {LATEST_PLAN.uri}")
        facts = dict(events[-1].extra)
        with open(LATEST_PLAN.uri.removeprefix("file://")) as f:
            solution = json.load(f)
        best = solution["solutions"][0]
        published = {
            "solve": facts,
            "value": best["value"],
            "items": sorted(item["id"] for item in best["items"]),
        }
        print(json.dumps(published, indent=2))
        return published

    publish_plan()
