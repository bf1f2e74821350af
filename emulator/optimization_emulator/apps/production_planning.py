"""Built-in demo app ``production-planning``: how many units of each product to make.

A real mixed-integer program solved with HiGHS. Every product has a unit profit, an integer
quantity between ``min_demand`` (default 0) and ``max_demand``, and uses some capacity of some
resources (machines, labour, ...); the plan maximizes total profit without exceeding any resource's
capacity. The output lists every product, so big instances make big outputs: that is what the
large-payload (presigned URL) paths of the emulator and the provider are tested with.

Run as an app: ``python -m optimization_emulator.apps.production_planning < input.json``.
Make an instance: ``python -m optimization_emulator.apps.production_planning --generate 60000``.
Options (strings, ``$NEXTMV_OPTIONS``): ``solve.duration`` (time limit, default ``30s``),
``solve.gap`` (relative MIP gap, default ``0.0001``).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from optimization_emulator.apps import milp, runtime

DEFAULT_DURATION = "30s"
DEFAULT_GAP = 1e-4


class Resource(pydantic.BaseModel):
    id: str
    capacity: float = pydantic.Field(ge=0)


class Product(pydantic.BaseModel):
    id: str
    profit: float
    max_demand: int = pydantic.Field(ge=0)
    min_demand: int = pydantic.Field(default=0, ge=0)
    usage: dict[str, float] = pydantic.Field(default_factory=dict)
    description: str = ""


class PlanningInput(pydantic.BaseModel):
    resources: list[Resource]
    products: list[Product]

    @pydantic.model_validator(mode="after")
    def _check_references(self) -> PlanningInput:
        known = {resource.id for resource in self.resources}
        for position, product in enumerate(self.products):
            unknown = sorted(set(product.usage) - known)
            if unknown:
                raise ValueError(f"products[{position}] ({product.id}) uses unknown resources {unknown}")
            if product.min_demand > product.max_demand:
                raise ValueError(f"products[{position}] ({product.id}) has min_demand > max_demand")
        return self


def generate_instance(
    n_products: int, n_resources: int = 10, seed: int = 0, description_length: int = 40
) -> dict[str, Any]:
    """A random, feasible instance whose capacities bind (about 40% of what full demand would use)."""
    rng = random.Random(seed)
    resources = [f"machine-{r + 1}" for r in range(n_resources)]
    demand_usage = dict.fromkeys(resources, 0.0)
    products = []
    for p in range(n_products):
        used = rng.sample(resources, k=rng.randint(1, min(3, n_resources)))
        usage = {r: round(rng.uniform(0.1, 5.0), 2) for r in used}
        max_demand = rng.randint(1, 100)
        for r, amount in usage.items():
            demand_usage[r] += amount * max_demand
        words = f"Product {p + 1} made on {', '.join(used)}; batch notes " + "x" * description_length
        products.append(
            {
                "id": f"p-{p + 1:06d}",
                "profit": round(rng.uniform(1.0, 50.0), 2),
                "max_demand": max_demand,
                "usage": usage,
                "description": words[: max(description_length, 0)],
            }
        )
    capacities = [{"id": r, "capacity": round(0.4 * demand_usage[r], 2)} for r in resources]
    return {"resources": capacities, "products": products}


def _problem(data: PlanningInput) -> milp.ColumnwiseMaxProblem:
    row_of = {resource.id: row for row, resource in enumerate(data.resources)}
    start, index, value = [0], [], []
    for product in data.products:
        for resource_id, amount in product.usage.items():
            index.append(row_of[resource_id])
            value.append(amount)
        start.append(len(index))
    return milp.ColumnwiseMaxProblem(
        profit=np.array([p.profit for p in data.products], dtype=float),
        lower=np.array([p.min_demand for p in data.products], dtype=float),
        upper=np.array([p.max_demand for p in data.products], dtype=float),
        row_upper=np.array([r.capacity for r in data.resources], dtype=float),
        start=np.array(start),
        index=np.array(index),
        value=np.array(value),
    )


def solve(data: PlanningInput, opts: dict[str, str]) -> dict[str, Any]:
    """The Nextmv-style output for ``data``: one solution with the plan for every product."""
    time_limit = runtime.parse_duration(opts.get("solve.duration", DEFAULT_DURATION))
    gap = runtime.float_option(opts, "solve.gap", DEFAULT_GAP)
    runtime.log(f"production-planning: {len(data.products)} products, {len(data.resources)} resources")
    result = milp.solve_max(_problem(data), time_limit=time_limit, relative_gap=gap)
    runtime.log(f"HiGHS: status={result.status} objective={result.objective} gap={result.gap}")
    solutions = []
    if result.values is not None:
        quantities = [int(q) for q in result.values]
        plan = [
            {
                "product": product.id,
                "quantity": quantity,
                "unit_profit": product.profit,
                "profit": round(quantity * product.profit, 6),
                "max_demand": product.max_demand,
            }
            for product, quantity in zip(data.products, quantities)
        ]
        usage = dict.fromkeys((r.id for r in data.resources), 0.0)
        for product, quantity in zip(data.products, quantities):
            for resource_id, amount in product.usage.items():
                usage[resource_id] += amount * quantity
        resource_usage = {
            r.id: {"used": round(usage[r.id], 6), "capacity": r.capacity} for r in data.resources
        }
        solutions.append({"plan": plan, "resource_usage": resource_usage})
    return {
        "status": result.status,
        "solutions": solutions,
        "options": {"solve.duration": time_limit, "solve.gap": gap},
        "statistics": runtime.run_statistics(
            result.duration,
            result.objective,
            status=result.status,
            bound=result.bound,
            gap=result.gap,
            nodes=result.nodes,
        ),
    }


def write_files(output_dir: Path, output: dict[str, Any]) -> None:
    """Multi-file output: ``solution.json`` (the whole output) and ``plan.csv``."""
    (output_dir / "solution.json").write_text(json.dumps(output, indent=2), encoding="utf-8")
    with (output_dir / "plan.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product", "quantity", "profit"])
        for solution in output["solutions"][:1]:
            for row in solution["plan"]:
                writer.writerow([row["product"], row["quantity"], row["profit"]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generate", type=int, metavar="N", help="print a random instance with N products")
    parser.add_argument("--resources", type=int, default=10, help="resources in a generated instance")
    parser.add_argument("--seed", type=int, default=0, help="random seed for --generate")
    args = parser.parse_args(argv)
    if args.generate is not None:
        json.dump(generate_instance(args.generate, args.resources, args.seed), sys.stdout)
        sys.stdout.write("\n")
        return 0
    return runtime.run_app(lambda: solve(runtime.read_input(PlanningInput), runtime.options()), write_files)


if __name__ == "__main__":
    sys.exit(main())
