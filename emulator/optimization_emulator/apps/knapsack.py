"""Built-in demo app ``knapsack``: the 0/1 knapsack problem as a MILP solved with HiGHS.

Input ``{"items": [{"id": "a", "value": 10, "weight": 5}, ...], "capacity": 15}``; the output's
first solution lists the chosen items with their total value and weight. Options (strings,
``$NEXTMV_OPTIONS``): ``solve.duration`` (time limit, default ``30s``), ``solve.gap`` (relative
MIP gap, default ``0`` so that small instances are solved to proven optimality).

Run as an app: ``python -m optimization_emulator.apps.knapsack < input.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from optimization_emulator.apps import milp, runtime

DEFAULT_DURATION = "30s"


class Item(pydantic.BaseModel):
    id: str
    value: float
    weight: float = pydantic.Field(ge=0)


class KnapsackInput(pydantic.BaseModel):
    items: list[Item]
    capacity: float = pydantic.Field(ge=0)


def solve(data: KnapsackInput, opts: dict[str, str]) -> dict[str, Any]:
    """The Nextmv-style output for ``data``."""
    time_limit = runtime.parse_duration(opts.get("solve.duration", DEFAULT_DURATION))
    gap = runtime.float_option(opts, "solve.gap", 0.0)
    n = len(data.items)
    runtime.log(f"knapsack: {n} items, capacity {data.capacity}")
    problem = milp.ColumnwiseMaxProblem(
        profit=np.array([item.value for item in data.items], dtype=float),
        lower=np.zeros(n),
        upper=np.ones(n),
        row_upper=np.array([data.capacity]),
        start=np.arange(n + 1),
        index=np.zeros(n, dtype=int),
        value=np.array([item.weight for item in data.items], dtype=float),
    )
    result = milp.solve_max(problem, time_limit=time_limit, relative_gap=gap)
    runtime.log(f"HiGHS: status={result.status} objective={result.objective}")
    solutions = []
    if result.values is not None:
        chosen = [item for item, take in zip(data.items, result.values) if take > 0.5]
        solutions.append(
            {
                "items": [item.model_dump() for item in chosen],
                "value": sum(item.value for item in chosen),
                "weight": sum(item.weight for item in chosen),
            }
        )
    return {
        "status": result.status,
        "solutions": solutions,
        "options": {"solve.duration": time_limit, "solve.gap": gap},
        "statistics": runtime.run_statistics(
            result.duration, result.objective, status=result.status, gap=result.gap, nodes=result.nodes
        ),
    }


def write_files(output_dir: Path, output: dict[str, Any]) -> None:
    """Multi-file output: ``solution.json``."""
    (output_dir / "solution.json").write_text(json.dumps(output, indent=2), encoding="utf-8")


def main() -> int:
    return runtime.run_app(lambda: solve(runtime.read_input(KnapsackInput), runtime.options()), write_files)


if __name__ == "__main__":
    sys.exit(main())
