"""The built-in demo apps: optimal on instances small enough to check by brute force, clear on bad input."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimization_emulator.apps import knapsack, production_planning, runtime

settings.register_profile(
    "emulator-apps", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def run_app(module: str, stdin: bytes, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"optimization_emulator.apps.{module}"],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


items = st.lists(
    st.fixed_dictionaries({"value": st.integers(0, 60), "weight": st.integers(0, 40)}), min_size=0, max_size=9
)


@settings(settings.get_profile("emulator-apps"))
@given(items=items, capacity=st.integers(0, 120))
def test_knapsack_matches_brute_force(items, capacity):
    data = {"items": [{"id": f"i{n}", **item} for n, item in enumerate(items)], "capacity": capacity}
    best = max(
        sum(p * i["value"] for p, i in zip(picks, items))
        for picks in itertools.product((0, 1), repeat=len(items))
        if sum(p * i["weight"] for p, i in zip(picks, items)) <= capacity
    )
    output = knapsack.solve(knapsack.KnapsackInput.model_validate(data), {"solve.duration": "10s"})
    assert output["status"] == "optimal"
    solution = output["solutions"][0]
    assert solution["weight"] <= capacity
    assert solution["value"] == pytest.approx(best)


products = st.lists(
    st.fixed_dictionaries(
        {
            "profit": st.integers(1, 30),
            "max_demand": st.integers(0, 4),
            "usage": st.fixed_dictionaries({"m1": st.integers(0, 6), "m2": st.integers(0, 6)}),
        }
    ),
    min_size=1,
    max_size=4,
)


@settings(settings.get_profile("emulator-apps"))
@given(products=products, cap1=st.integers(0, 30), cap2=st.integers(0, 30))
def test_production_planning_matches_brute_force(products, cap1, cap2):
    capacity = {"m1": cap1, "m2": cap2}
    best = 0
    for quantities in itertools.product(*(range(p["max_demand"] + 1) for p in products)):
        if all(sum(q * p["usage"][r] for q, p in zip(quantities, products)) <= capacity[r] for r in capacity):
            best = max(best, sum(q * p["profit"] for q, p in zip(quantities, products)))
    data = {
        "resources": [{"id": r, "capacity": c} for r, c in capacity.items()],
        "products": [{"id": f"p{n}", **p} for n, p in enumerate(products)],
    }
    output = production_planning.solve(
        production_planning.PlanningInput.model_validate(data), {"solve.gap": "0"}
    )
    assert output["status"] == "optimal"
    plan = output["solutions"][0]["plan"]
    assert all(0 <= row["quantity"] <= p["max_demand"] for row, p in zip(plan, products))
    for r, usage in output["solutions"][0]["resource_usage"].items():
        assert usage["used"] <= capacity[r] + 1e-9
    assert sum(row["profit"] for row in plan) == pytest.approx(best)


def test_min_demand_can_make_planning_infeasible():
    data = {
        "resources": [{"id": "m", "capacity": 5}],
        "products": [{"id": "p", "profit": 1, "max_demand": 10, "min_demand": 6, "usage": {"m": 1}}],
    }
    completed = run_app("production_planning", json.dumps(data).encode())
    assert completed.returncode == 0
    output = json.loads(completed.stdout)
    assert (output["status"], output["solutions"]) == ("infeasible", [])


@pytest.mark.parametrize(
    ("module", "stdin", "message"),
    [
        ("knapsack", b"", "no input"),
        ("knapsack", b"{not json", "not valid JSON"),
        ("knapsack", b'{"items": [{"id": "a", "value": 1}], "capacity": 3}', "items.0.weight"),
        ("knapsack", b'{"items": [], "capacity": -1}', "capacity"),
        (
            "production_planning",
            b'{"resources": [], "products": [{"id": "p", "profit": 1, "max_demand": 1, '
            b'"usage": {"ghost": 1}}]}',
            "unknown resources ['ghost']",
        ),
        ("production_planning", b"[]", "invalid input"),
    ],
)
def test_bad_input_exits_2_with_the_reason_on_stderr(module, stdin, message):
    completed = run_app(module, stdin)
    assert completed.returncode == runtime.EXIT_BAD_INPUT
    assert completed.stdout == b""
    assert message in completed.stderr.decode()


def test_bad_option_is_reported():
    completed = run_app(
        "knapsack", b'{"items": [], "capacity": 1}', NEXTMV_OPTIONS='{"solve.duration": "soon"}'
    )
    assert completed.returncode == runtime.EXIT_BAD_INPUT
    assert "invalid duration 'soon'" in completed.stderr.decode()


def test_stdout_is_only_the_json_output_even_with_solver_banners():
    completed = run_app("knapsack", b'{"items": [{"id": "a", "value": 2, "weight": 1}], "capacity": 1}')
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["solutions"][0]["items"] == [{"id": "a", "value": 2.0, "weight": 1.0}]
    assert "HiGHS" in completed.stderr.decode()  # banners and our log went to the run log


def test_multi_file_output_writes_solution_and_plan(tmp_path):
    data = production_planning.generate_instance(30, 3, seed=2)
    completed = subprocess.run(
        [sys.executable, "-m", "optimization_emulator.apps.production_planning"],
        input=json.dumps(data).encode(),
        capture_output=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "NEXTMV_OUTPUT_FORMAT": "multi-file", "NEXTMV_OUTPUT_DIR": "./outputs"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b""
    solution = json.loads((tmp_path / "outputs" / "solution.json").read_text())
    lines = (tmp_path / "outputs" / "plan.csv").read_text().splitlines()
    assert lines[0] == "product,quantity,profit" and len(lines) == 31
    assert solution["status"] == "optimal"


def test_generator_is_deterministic_valid_and_sized(tmp_path):
    first = production_planning.generate_instance(200, 4, seed=5)
    assert first == production_planning.generate_instance(200, 4, seed=5)
    assert first != production_planning.generate_instance(200, 4, seed=6)
    production_planning.PlanningInput.model_validate(first)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "optimization_emulator.apps.production_planning",
            "--generate",
            "50",
            "--resources",
            "3",
            "--seed",
            "5",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    generated = json.loads(completed.stdout)
    assert len(generated["products"]) == 50 and len(generated["resources"]) == 3


@pytest.mark.parametrize(
    ("text", "seconds"), [("5", 5.0), ("5s", 5.0), ("1.5s", 1.5), ("250ms", 0.25), ("2m", 120.0)]
)
def test_parse_duration(text, seconds):
    assert runtime.parse_duration(text) == seconds
