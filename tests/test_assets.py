"""Solve outputs as asset events and hook lineage (airflow_provider.assets), and the OpenLineage run
facets (airflow_provider.lineage), on Airflow's own outlet-event accessors and lineage collector."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.sdk.lineage import HookLineageCollector

from airflow_provider import assets
from airflow_provider.assets import asset_uri, covers, record_output_assets, small_extra
from airflow_provider.operators.cuopt import CuOptSolveOperator
from airflow_provider.operators.nextmv import NextmvRunOperator
from airflow_provider.sensors.nextmv import NextmvRunSensor

EXTRA = {"service": "nextmv", "run_id": "run-1", "status": "succeeded", "objective": 42.5}


@pytest.fixture
def collector(monkeypatch):
    """A real, listening lineage collector (what Airflow hands out when OpenLineage is enabled)."""
    from airflow.providers.common.compat.lineage import hook as compat_hook

    real = HookLineageCollector()
    monkeypatch.setattr(compat_hook, "get_hook_lineage_collector", lambda: real)
    return real


def _task(*outlets, hook=None):
    return SimpleNamespace(outlets=list(outlets), hook=hook or object())


def _alias_events(events: OutletEventAccessors, alias: AssetAlias):
    return [(e.dest_asset_key.uri, e.extra) for e in events[alias].asset_alias_events]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("/data/plans/a.json", "file:///data/plans/a.json"),
        ("file:///data/plans/a.json", "file:///data/plans/a.json"),
        ("/data/plans/../plans/a.json", "file:///data/plans/a.json"),
        ("/data/plans/", "file:///data/plans"),
        ("S3://bucket/plans/a.json", "s3://bucket/plans/a.json"),
        ("s3://bucket/plans/", "s3://bucket/plans"),
        ("https://user:pw@store.example/a.json?X-Amz-Signature=secret#x", "https://store.example/a.json"),
        ("gs://b/p.json", "gs://b/p.json"),
    ],
)
def test_asset_uri_is_canonical_and_never_keeps_query_or_credentials(given, canonical):
    assert asset_uri(given) == canonical


def test_relative_local_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert asset_uri("out/a.json") == f"file://{tmp_path}/out/a.json"


def test_covers_matches_the_file_or_a_folder_containing_it():
    assert covers("file:///data/plans/a.json", "/data/plans/a.json")
    assert covers("/data/plans", "file:///data/plans/run-1/a.json")
    assert covers("s3://bucket/plans/", "s3://bucket/plans/a.json")
    assert not covers("/data/plan", "/data/plans/a.json")  # a name prefix is not a folder
    assert not covers("s3://bucket/plans/a.json", "s3://other/plans/a.json")


def test_small_extra_keeps_only_scalars():
    summary = {
        "service": "cuopt",
        "run_id": "r",
        "status": "optimal",
        "objective": None,
        "gap": 0.0,
        "solve_time": 3,
        "output_paths": ["/a"],
        "metrics": {"x": 1},
        "ok": True,
    }
    assert small_extra(summary) == {
        "service": "cuopt",
        "run_id": "r",
        "status": "optimal",
        "objective": None,
        "gap": 0.0,
        "solve_time": 3,
        "ok": True,
    }
    assert small_extra(None) == {}


def test_declared_asset_that_names_the_written_file_gets_the_extra(tmp_path, collector):
    out = tmp_path / "plan.json"
    asset = Asset(f"file://{out}")
    events = OutletEventAccessors()
    uris = record_output_assets({"outlet_events": events}, _task(asset), [str(out)], EXTRA)
    assert uris == [f"file://{out}"]
    assert events[asset].extra == EXTRA


def test_declared_folder_asset_covers_files_written_inside(tmp_path, collector):
    asset = Asset(f"file://{tmp_path}/routes/")
    events = OutletEventAccessors()
    record_output_assets(
        {"outlet_events": events}, _task(asset), [str(tmp_path / "routes" / "r1.json")], EXTRA
    )
    assert events[asset].extra == EXTRA


def test_user_extra_on_the_event_is_kept(tmp_path, collector):
    out = tmp_path / "plan.json"
    asset = Asset(str(out))  # declared as a bare path: matched all the same
    events = OutletEventAccessors()
    events[asset].extra["owner"] = "planning"
    record_output_assets({"outlet_events": events}, _task(asset), [f"file://{out}"], EXTRA)
    assert events[asset].extra == {"owner": "planning", **EXTRA}


def test_unmatched_asset_gets_no_extra_and_a_warning(tmp_path, collector, caplog):
    asset = Asset("s3://bucket/elsewhere.json")
    events = OutletEventAccessors()
    with caplog.at_level(logging.WARNING, logger=assets.__name__):
        record_output_assets({"outlet_events": events}, _task(asset), [str(tmp_path / "a.json")], EXTRA)
    assert events[asset].extra == {}
    assert "names none of the written outputs" in caplog.text and "AssetAlias" in caplog.text


def test_alias_receives_one_asset_per_written_path(tmp_path, collector):
    alias = AssetAlias("solutions")
    events = OutletEventAccessors()
    paths = [str(tmp_path / "run-1" / "a.json"), f"file://{tmp_path}/run-1/b.json"]
    record_output_assets({"outlet_events": events}, _task(alias), paths, {**EXTRA, "metrics": {"x": 1}})
    assert _alias_events(events, alias) == [
        (f"file://{tmp_path}/run-1/a.json", EXTRA),
        (f"file://{tmp_path}/run-1/b.json", EXTRA),
    ]


def test_no_outlets_needs_no_context(collector):
    # sensors pass context=None; without outlets it is never looked up (no task is running here)
    assert record_output_assets(None, _task(), ["/tmp/x.json"], EXTRA) == ["file:///tmp/x.json"]


def test_hook_lineage_reports_inputs_and_outputs_with_the_hook_as_context(tmp_path, collector):
    hook = object()
    record_output_assets(
        {}, _task(hook=hook), [str(tmp_path / "out.json")], EXTRA, [str(tmp_path / "in.json"), None]
    )
    lineage = collector.collected_assets
    assert [(i.asset.uri, i.context) for i in lineage.inputs] == [(f"file://{tmp_path}/in.json", hook)]
    assert [(o.asset.uri, o.asset.extra, o.context) for o in lineage.outputs] == [
        (f"file://{tmp_path}/out.json", EXTRA, hook)
    ]


def test_presigned_input_is_reported_without_its_signature(collector):
    record_output_assets({}, _task(), [], EXTRA, ["https://store.example/in.json?X-Amz-Signature=s3cr3t"])
    assert [i.asset.uri for i in collector.collected_assets.inputs] == ["https://store.example/in.json"]


def test_nothing_written_reports_nothing(collector):
    record_output_assets({}, _task(), [], EXTRA)
    assert not collector.has_collected


def test_a_broken_collector_never_fails_the_solve(monkeypatch, caplog):
    from airflow.providers.common.compat.lineage import hook as compat_hook

    def boom():
        raise RuntimeError("collector down")

    monkeypatch.setattr(compat_hook, "get_hook_lineage_collector", boom)
    with caplog.at_level(logging.WARNING, logger=assets.__name__):
        assert record_output_assets({}, _task(), ["/tmp/x.json"], EXTRA) == ["file:///tmp/x.json"]
    assert "Could not report hook lineage" in caplog.text


# ------------------------------------------------------------------------------ OpenLineage facets
def _facets_dict(lineage):
    from openlineage.client.serde import Serde

    return {name: Serde.to_dict(facet) for name, facet in lineage.run_facets.items()}


def test_finished_solve_reports_external_query_and_solve_facets(nextmv_conn, collector):
    op = NextmvRunOperator(
        task_id="solve", app_id="knapsack", input={"items": []}, nextmv_conn_id=nextmv_conn
    )
    assert op.hook.settings  # the task resolved its connection while solving
    record_output_assets({}, op, ["/tmp/plan.json"], EXTRA)
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == [] and lineage.outputs == []  # datasets come from hook lineage
    facets = _facets_dict(lineage)
    assert facets["externalQuery"]["externalQueryId"] == "run-1"
    assert facets["externalQuery"]["source"].startswith("nextmv://127.0.0.1:")
    assert {k: facets["optimizationSolve"][k] for k in ("service", "runId", "status", "objective")} == {
        "service": "nextmv",
        "runId": "run-1",
        "status": "succeeded",
        "objective": 42.5,
    }
    assert facets["optimizationSolve"]["_schemaURL"].startswith("https://")


def test_sensor_that_failed_reports_its_run_id_without_solve_facts():
    sensor = NextmvRunSensor(task_id="wait", app_id="a", run_id="run-7", nextmv_conn_id="nowhere")
    facets = _facets_dict(sensor.get_openlineage_facets_on_complete(None))
    assert facets["externalQuery"] == {
        **facets["externalQuery"],
        "externalQueryId": "run-7",
        "source": "nextmv://",  # its hook never resolved a connection: none is looked up for a facet
    }
    assert "optimizationSolve" not in facets


def test_cuopt_operator_without_a_request_reports_no_facet():
    op = CuOptSolveOperator(
        task_id="solve", problem={"x": 1}, output_uri="/tmp/out/", cuopt_conn_id="nowhere"
    )
    ti = SimpleNamespace(task_id="solve", xcom_pull=lambda **kw: None)
    assert op.get_openlineage_facets_on_complete(ti).run_facets == {}


# ------------------------------------------------------------------ through the real completion paths
def test_nextmv_sensor_adds_its_output_to_an_alias_through_the_current_context(
    nextmv_conn, context, tmp_path
):
    import time

    from airflow.sdk.execution_time.context import set_current_context

    from airflow_provider.hooks.nextmv import NextmvHook

    hook = NextmvHook()
    run_id = hook.submit_run("echo", input={"answer": 42})
    hook.wait_for_run("echo", run_id, deadline=time.time() + 60, poll_interval=0.1, max_poll_interval=0.3)
    alias = AssetAlias("solutions")
    sensor = NextmvRunSensor(
        task_id="w", app_id="echo", run_id=run_id, output_uri=str(tmp_path) + "/", outlets=[alias]
    )
    events = OutletEventAccessors()
    with set_current_context({**context, "outlet_events": events}):  # what the task runner sets
        assert sensor.poke(context).is_done
    assert _alias_events(events, alias) == [
        (
            f"file://{tmp_path}/{run_id}.json",
            {"service": "nextmv", "run_id": run_id, "status": "succeeded", "objective": None},  # no metrics
        ),
    ]


def test_cuopt_operator_gives_a_declared_folder_asset_the_request_facts(
    cuopt_conn, context, tmp_path, collector
):
    from optimization_emulator.cuopt.generate import routing_problem

    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps(routing_problem(5, 2, seed=1, time_limit=1)))
    routes = Asset(f"file://{tmp_path}/routes")
    op = CuOptSolveOperator(
        task_id="solve", problem_uri=str(problem), output_uri=f"{tmp_path}/routes/", outlets=[routes]
    )
    events = OutletEventAccessors()
    req_id = op.execute({**context, "outlet_events": events})
    extra = events[routes].extra  # the solution_summary's facts: what the solver found, with its cost
    assert {k: extra[k] for k in ("service", "run_id")} == {"service": "cuopt-nvcf", "run_id": req_id}
    assert extra["status"] in {"optimal", "feasible"}
    assert isinstance(extra["objective"], float) and extra["objective"] > 0
    lineage = collector.collected_assets
    assert [i.asset.uri for i in lineage.inputs] == [f"file://{problem}"]
    assert [o.asset.uri for o in lineage.outputs] == [f"file://{tmp_path}/routes/{req_id}.json"]
    facets = _facets_dict(op.get_openlineage_facets_on_complete(None))
    assert facets["externalQuery"]["externalQueryId"] == req_id
    assert facets["externalQuery"]["source"].startswith("cuopt://127.0.0.1:")
