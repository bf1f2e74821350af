"""Import cost of the modules DAG files import, on top of ``import airflow.sdk``.

Every DAG parse imports the operators and sensors it uses; hooks, HTTP clients and transfer
libraries are imported lazily where they are used (``tests/test_import_cost.py`` pins that). Each
sample is a fresh interpreter: ``import airflow.sdk``, then the module, timed with ``perf_counter``.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import REPO, median
from benchmarks.report import Report, Row

GOAL_MS = 100.0
MODULES = (
    "airflow_provider.operators.nextmv",
    "airflow_provider.sensors.nextmv",
    "airflow_provider.operators.cuopt",
    "airflow_provider.sensors.cuopt",
)
#: For scale: a standard Airflow operator under the same measurement.
REFERENCE = "airflow.providers.standard.operators.bash"

SCRIPT = """
import json, time
import airflow.sdk
started = time.perf_counter()
import {module}
print(json.dumps(time.perf_counter() - started))
"""


def sample(module: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(module=module)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def imports(env: dict[str, str], report: Report, *, repeat: int) -> None:
    samples: dict[str, list[float]] = {m: [] for m in (*MODULES, REFERENCE)}
    for _ in range(repeat):  # interleaved: a noisy moment hits every module alike
        for module, values in samples.items():
            values.append(sample(module, env) * 1000)
    for module, ms in samples.items():
        reference = module == REFERENCE
        report.add(
            Row(
                f"Import on top of airflow.sdk ({repeat} fresh interpreters)",
                f"`{module}`" + (" (reference)" if reference else ""),
                f"min {min(ms):.0f} ms, median {median(ms):.0f} ms",
                goal="" if reference else f"≤ {GOAL_MS:.0f} ms",
                ok=None if reference else median(ms) <= GOAL_MS,
            )
        )
