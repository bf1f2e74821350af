"""Example DAG: a MILP from an MPS file solved by a self-hosted NVIDIA cuOpt server, deferrably.

1. ``solve_milp`` (:class:`~airflow_provider.operators.cuopt.CuOptSolveOperator`) reads the MPS file
   (``data/knapsack.mps`` beside this DAG, or any smart-open URI in the ``mps_uri`` param), converts
   it to cuOpt's LPData JSON on the worker with HiGHS (no GPU package needed), POSTs it to the
   server's ``/cuopt/request`` (JSON, or zlib-compressed JSON for large problems) and defers: the
   triggerer polls ``GET /cuopt/solution/{id}`` and stores the result under ``.../solution/`` before
   the task resumes. The worker then copies the end of the solver log into the task log and deletes
   the solution and log on the server. A retried task re-attaches to its request (the id is in the
   task state store before any wait), so a restart of the triggerer or a worker never solves twice.
2. ``report`` reads the chosen items and the objective from the stored result.

The same operator drives cuOpt on NVCF: set the ``cuopt_conn_id`` param to an NVCF (type ``cuopt``)
connection and nothing else changes.

Connection ``cuopt_server_default`` (conn type ``cuopt_server``): host ``cuopt.internal`` (or
``https://cuopt.internal``), port ``5000``. The server has no authentication of its own: put it
behind a gateway and name the header it checks in the extra ``auth_header_name`` (its value in the
password field), or keep it on a private network (see docs/cuopt.md, "Security"). For the local
emulator: ``AIRFLOW_CONN_CUOPT_SERVER_DEFAULT='{"conn_type": "cuopt_server", "host": "127.0.0.1",
"port": 5000}'`` with ``python -m optimization_emulator --cuopt-server-port 5000``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import smart_open
from airflow.sdk import DAG, Param, XComArg, task

from airflow_provider.operators.cuopt import CuOptSolveOperator

DAG_ID = "example_cuopt_server_milp"
DEFAULT_WORK_URI = str(Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "optimization-demo")
DEFAULT_MPS = str(Path(__file__).resolve().parent / "data" / "knapsack.mps")


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-")


RUN_FOLDER = "{{ params.work_uri.rstrip('/') }}/{{ run_id | slug }}"

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "cuopt", "self-hosted", "optimization", "milp"],
    user_defined_filters={"slug": _slug},
    default_args={"retries": 0},
    params={
        "work_uri": Param(DEFAULT_WORK_URI, type="string", description="Folder/URI for the solution."),
        "mps_uri": Param(DEFAULT_MPS, type="string", description="The MILP as an MPS file (any URI)."),
        "cuopt_conn_id": Param(
            "cuopt_server_default", type="string", description="cuopt_server (or cuopt/NVCF) connection."
        ),
    },
    doc_md=__doc__,
) as dag:
    # [START howto_operator_cuopt_server_deferrable]
    solve_milp = CuOptSolveOperator(
        task_id="solve_milp",
        problem_uri="{{ params.mps_uri }}",  # .mps / .mps.gz / .mps.bz2: converted on the worker
        output_uri=RUN_FOLDER + "/solution/",  # the result lands in <request id>.json
        cuopt_conn_id="{{ params.cuopt_conn_id }}",  # the connection's type picks the backend
        deferrable=True,  # the triggerer polls; no worker slot is held while the server solves
        poll_seconds=5,  # longest pause between two polls (they start at about one a second)
        timeout=1800,  # then the job is aborted on the server and the task fails
    )
    # [END howto_operator_cuopt_server_deferrable]

    @task
    def report(paths: list[str]) -> dict[str, Any]:
        """The chosen items and the objective, read from the stored result."""
        with smart_open.open(paths[0], encoding="utf-8") as f:
            result = json.load(f)
        solution = result["response"]["solver_response"]["solution"]
        chosen = [f"X{i + 1}" for i, value in enumerate(solution["primal_solution"]) if value > 0.5]
        summary = {
            "status": result["response"]["solver_response"]["status"],
            "objective": solution["primal_objective"],
            "chosen": chosen,
            "result": paths[0],
        }
        print(json.dumps(summary))
        return summary

    report(XComArg(solve_milp, key="output_paths"))
