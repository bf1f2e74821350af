"""The official ``nextmv`` SDK 1.13.0, unchanged, against the emulator over real sockets.

Covers what shared/reference/nextmv.md §10 lists: a small inline run, a > 5 MiB input (upload path),
a > 5 MiB output (format=url + presigned download), a failed run, a cancel, logs and 404s, plus the
multi-file path. Optima are checked against independent brute force, not against the solver.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from pathlib import Path

import pytest
import requests
from nextmv.cloud import Application, Client, list_applications

from optimization_emulator.apps.production_planning import generate_instance
from optimization_emulator.limits import INLINE_BYTES
from optimization_emulator.presigned import UPLOAD_ROUTE

KNAPSACK = {
    "items": [
        {"id": "map", "value": 9, "weight": 15},
        {"id": "compass", "value": 13, "weight": 8},
        {"id": "water", "value": 153, "weight": 153},
        {"id": "sandwich", "value": 50, "weight": 50},
        {"id": "glucose", "value": 15, "weight": 15},
        {"id": "tin", "value": 68, "weight": 68},
        {"id": "banana", "value": 27, "weight": 27},
        {"id": "apple", "value": 39, "weight": 39},
        {"id": "cheese", "value": 23, "weight": 23},
        {"id": "beer", "value": 52, "weight": 52},
        {"id": "camera", "value": 32, "weight": 2},
    ],
    "capacity": 200,
}

TINY_PLANNING = {
    "resources": [{"id": "machine-1", "capacity": 14.0}, {"id": "labour", "capacity": 9.0}],
    "products": [
        {"id": "chair", "profit": 5.0, "max_demand": 4, "usage": {"machine-1": 2.0, "labour": 1.0}},
        {"id": "table", "profit": 11.0, "max_demand": 3, "usage": {"machine-1": 3.0, "labour": 3.0}},
        {"id": "stool", "profit": 3.0, "max_demand": 5, "usage": {"machine-1": 1.0}},
    ],
}


def best_knapsack_value(data: dict) -> float:
    items = data["items"]
    best = 0.0
    for picks in itertools.product((0, 1), repeat=len(items)):
        weight = sum(p * item["weight"] for p, item in zip(picks, items))
        if weight <= data["capacity"]:
            best = max(best, sum(p * item["value"] for p, item in zip(picks, items)))
    return best


def best_plan_profit(data: dict) -> float:
    products, capacity = data["products"], {r["id"]: r["capacity"] for r in data["resources"]}
    best = 0.0
    for quantities in itertools.product(*(range(p["max_demand"] + 1) for p in products)):
        used = dict.fromkeys(capacity, 0.0)
        for q, product in zip(quantities, products):
            for resource, amount in product["usage"].items():
                used[resource] += q * amount
        if all(used[r] <= capacity[r] + 1e-9 for r in capacity):
            best = max(best, sum(q * p["profit"] for q, p in zip(quantities, products)))
    return best


@pytest.fixture(scope="module")
def client(emulator) -> Client:
    return Client(api_key=emulator.api_key, url=emulator.url)


@pytest.fixture(scope="module")
def large_instance() -> dict:
    instance = generate_instance(36_000, 10, seed=7)
    assert len(json.dumps(instance, separators=(",", ":"))) > INLINE_BYTES
    return instance


def requests_since(emulator, started: float) -> list[dict]:
    return [record for record in emulator.requests_log() if record["time"] >= started]


def test_inline_knapsack_run_is_a_proven_optimum(client, emulator, polling):
    uploads_before = emulator.stats()["nextmv"]["uploads"]
    app = Application(id="knapsack", client=client)
    result = app.new_run_with_result(
        input=KNAPSACK, instance_id="latest", run_options={"solve.duration": "5s"}, polling_options=polling()
    )
    assert result.metadata.status_v2.value == "succeeded", result.metadata.error
    solution = result.output["solutions"][0]
    chosen = {item["id"] for item in solution["items"]}
    by_id = {item["id"]: item for item in KNAPSACK["items"]}
    assert sum(by_id[i]["weight"] for i in chosen) <= KNAPSACK["capacity"]
    assert sum(by_id[i]["value"] for i in chosen) == solution["value"] == best_knapsack_value(KNAPSACK)
    assert result.metadata.options.request_options == {"solve.duration": "5s"}
    assert emulator.stats()["nextmv"]["uploads"] == uploads_before  # small input stays inline
    assert app.run_input(result.id) == KNAPSACK
    assert "knapsack: 11 items" in app.run_logs(result.id).log


def test_production_planning_small_instance_is_optimal(client, polling):
    app = Application(id="production-planning", client=client)
    result = app.new_run_with_result(input=TINY_PLANNING, polling_options=polling())
    assert result.metadata.status_v2.value == "succeeded", result.metadata.error
    assert result.output["status"] == "optimal"
    plan = result.output["solutions"][0]["plan"]
    assert [row["product"] for row in plan] == ["chair", "table", "stool"]
    profit = sum(row["quantity"] * p["profit"] for row, p in zip(plan, TINY_PLANNING["products"]))
    assert profit == pytest.approx(best_plan_profit(TINY_PLANNING))
    assert result.output["statistics"]["result"]["value"] == pytest.approx(profit)


def test_large_input_and_output_take_the_presigned_paths(client, emulator, polling, large_instance):
    before = emulator.stats()["nextmv"]
    started = time.time()
    app = Application(id="production-planning", client=client)
    result = app.new_run_with_result(input=large_instance, polling_options=polling())

    assert result.metadata.status_v2.value == "succeeded", result.metadata.error
    assert result.metadata.input_size > INLINE_BYTES
    assert result.metadata.output_size > INLINE_BYTES
    solution = result.output["solutions"][0]
    assert len(solution["plan"]) == len(large_instance["products"])
    assert all(u["used"] <= u["capacity"] + 1e-6 for u in solution["resource_usage"].values())
    total = sum(row["profit"] for row in solution["plan"])
    assert result.output["statistics"]["result"]["value"] == pytest.approx(total, rel=1e-9)

    after = emulator.stats()["nextmv"]
    assert after["uploads"] == before["uploads"] + 1
    assert after["upload_bytes"] == before["upload_bytes"] + result.metadata.input_size
    assert after["downloads"] == before["downloads"] + 1
    log = requests_since(emulator, started)
    puts = [r for r in log if r["route"] == UPLOAD_ROUTE]
    assert [(p["method"], p["status"], p["authorization"]) for p in puts] == [("PUT", 200, False)]
    assert puts[0]["content_length"] == result.metadata.input_size
    new_run = next(r for r in log if r["method"] == "POST" and r["path"].endswith("/runs"))
    assert new_run["content_length"] < 10_000  # upload_id, not the input
    run_path = f"/v1/applications/production-planning/runs/{result.id}"
    assert {"format": "url"} in [r["query"] for r in log if r["path"] == run_path]
    assert [r["query"] for r in log if r["path"] == run_path + "/output"] == [{"format": "url"}]
    downloads = [r for r in log if r["path"] == f"/_presigned/nextmv/runs/{result.id}/output"]
    assert [(d["status"], d["authorization"]) for d in downloads] == [(200, False)]
    assert downloads[0]["query"]["X-Signature"] == "<redacted>"


def test_failed_run_reports_the_apps_error(client, polling):
    app = Application(id="fail", client=client)
    result = app.new_run_with_result(input={"x": 1}, polling_options=polling())
    assert result.metadata.status_v2.value == "failed"
    assert "exited with status 3" in result.metadata.error
    assert "something broke: bad things" in result.metadata.error
    assert result.error_log.stderr.endswith("something broke: bad things")
    assert result.error_log.stdout == "partial"


def test_demo_app_rejects_bad_input_with_a_clear_error(client, polling):
    app = Application(id="production-planning", client=client)
    result = app.new_run_with_result(input={"resources": [], "products": "many"}, polling_options=polling())
    assert result.metadata.status_v2.value == "failed"
    assert "invalid input" in result.metadata.error and "products" in result.metadata.error


def test_cancel_moves_a_running_run_to_canceled(client, polling):
    app = Application(id="slow", client=client)
    run_id = app.new_run(input={"a": 1})
    deadline = time.monotonic() + 10
    while app.run_information(run_id).metadata.status_v2.value != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    app.cancel_run(run_id)
    result = app.run_result_with_polling(run_id, polling_options=polling())
    assert result.metadata.status_v2.value == "canceled"
    assert result.output is None


def test_unknown_app_and_run_are_404(client):
    with pytest.raises(requests.HTTPError) as unknown_app:
        Application.get(client, "no-such-app")
    assert unknown_app.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as unknown_run:
        Application(id="knapsack", client=client).run_information("latest-nothere")
    assert unknown_run.value.response.status_code == 404


def test_catalog_parses(client, polling):
    app = Application.get(client, "knapsack")
    assert app.default_instance_id == "latest"
    assert [instance.id for instance in app.list_instances()] == ["latest"]
    run_id = app.new_run(input=KNAPSACK, name="catalog", description="listed")
    app.run_result_with_polling(run_id, polling_options=polling())
    listed = {run.id: run for run in app.list_runs()}
    assert listed[run_id].name == "catalog" and listed[run_id].status_v2.value == "succeeded"
    assert "knapsack" in {a.id for a in list_applications(client)}
    app.delete_run(run_id)
    assert run_id not in {run.id for run in app.list_runs()}


def test_multi_file_production_planning(client, polling, tmp_path):
    inputs, outputs = tmp_path / "inputs", tmp_path / "outputs"
    inputs.mkdir()
    (inputs / "input.json").write_text(json.dumps(TINY_PLANNING))
    app = Application(id="production-planning", client=client)
    result = app.new_run_with_result(
        input_dir_path=str(inputs), output_dir_path=str(outputs), polling_options=polling()
    )
    assert result.metadata.status_v2.value == "succeeded", result.metadata.error
    assert result.metadata.format.format_output.output_type.value == "multi-file"
    solution = json.loads((outputs / "solution.json").read_text())
    with (outputs / "plan.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["product"], int(r["quantity"])) for r in rows] == [
        (p["product"], p["quantity"]) for p in solution["solutions"][0]["plan"]
    ]


def test_multi_file_round_trip_keeps_every_byte(client, polling, tmp_path: Path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    (inputs / "nested" / "deeper").mkdir(parents=True)
    files = {
        "a.csv": b"id,value\n1,2\n",
        "nested/b.bin": bytes(range(256)) * 50,
        "nested/deeper/c.txt": "h\u00e9llo\n".encode(),
    }
    for name, data in files.items():
        (inputs / name).write_bytes(data)
    app = Application(id="files", client=client)
    result = app.new_run_with_result(
        input_dir_path=str(inputs), output_dir_path=str(outputs), polling_options=polling()
    )
    assert result.metadata.status_v2.value == "succeeded", result.metadata.error
    for name, data in files.items():
        assert (outputs / name).read_bytes() == data
    assert (outputs / "listing.txt").read_text().split() == ["a.csv", "nested"]
