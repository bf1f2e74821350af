"""Provider metadata: schema-valid, discoverable through the entry point, every listed path importable."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider.get_provider_info import get_provider_info


def test_valid_against_airflows_runtime_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_resolves_and_package_name_matches_distribution():
    (ep,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.dist.name == "airflow-provider-optimization"
    ]
    assert ep.load() is get_provider_info
    assert get_provider_info()["package-name"] == ep.dist.name


def test_airflow_cli_lists_the_provider_its_hooks_and_links(tmp_path):
    """What a user runs: ``airflow providers list`` / ``hooks`` / ``links``."""
    # As a user's shell has it: a fresh AIRFLOW_HOME, no unit-test mode (which logs to stdout).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | {
        "AIRFLOW_HOME": str(tmp_path)
    }
    airflow_cli = [sys.executable, "-m", "airflow", "providers"]

    def cli(*args: str) -> list[dict]:
        done = subprocess.run([*airflow_cli, *args, "-o", "json"], env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        return json.loads(done.stdout)

    (ours,) = [p for p in cli("list") if p["package_name"] == "airflow-provider-optimization"]
    assert ours["version"] == get_provider_info()["versions"][0]
    hooks = {row["connection_type"]: row["class"] for row in cli("hooks")}
    assert hooks["nextmv"] == "airflow_provider.hooks.nextmv.NextmvHook"
    assert hooks["cuopt"] == "airflow_provider.hooks.cuopt.CuOptHook"
    assert hooks["cuopt_server"] == "airflow_provider.hooks.cuopt_server.CuOptServerHook"
    links = {row["extra_link_class_name"] for row in cli("links")}
    assert "airflow_provider.operators.nextmv.NextmvRunLink" in links


def test_every_listed_module_and_class_imports():
    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for path in [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"]:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)


# Modules of a role's package that hold what the role's classes compose, not a hook/operator/... of
# their own: listed nowhere, by design.
HELPER_MODULES = {
    "airflow_provider.hooks.base",
    "airflow_provider.hooks.base_async",
    "airflow_provider.hooks.cuopt_outcome",
    "airflow_provider.hooks.cuopt_problems",
    "airflow_provider.hooks.cuopt_backends",
    "airflow_provider.hooks.cuopt_results",
    "airflow_provider.hooks.cuopt_server_results",
    "airflow_provider.hooks.nextmv_outcome",
    "airflow_provider.hooks.nextmv_payloads",
    "airflow_provider.triggers.base",
}


def test_every_module_is_listed():
    info = get_provider_info()
    root = Path(__file__).resolve().parents[1] / "airflow_provider"
    for kind in ("hooks", "operators", "sensors", "triggers"):
        listed = {m for e in info[kind] for m in e["python-modules"]}
        public = {
            f"airflow_provider.{kind}.{p.stem}"
            for p in (root / kind).glob("*.py")
            if not p.stem.startswith("_")
        }
        assert public - HELPER_MODULES == listed, kind
        assert not listed & HELPER_MODULES, kind


def test_connection_form_is_declarative():
    (nextmv,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "nextmv"]
    assert nextmv["ui-field-behaviour"]["relabeling"]["password"] == "API key"
    assert nextmv["conn-fields"]["verify_ssl"]["schema"]["default"] is True
