"""What a production install carries: the provider's wheel holds runtime code only; the emulator, the
test launchers and the pytest plugin are a distribution of their own (``emulator/``).

Both wheels are really built from this checkout (``uv build``) and read back.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for name, source in (("provider", REPO), ("emulator", REPO / "emulator")):
        work = tmp_path_factory.mktemp(f"src-{name}")
        # build from a copy: setuptools writes build/ and *.egg-info next to the sources
        shutil.copytree(source, work / "src", ignore=shutil.ignore_patterns(".venv", ".git", "emulator"))
        if name == "provider":
            shutil.rmtree(work / "src" / "tests")
        subprocess.run(
            [str(UV), "build", "--wheel", "-q", "-o", str(out / name), str(work / "src")],
            check=True,
            capture_output=True,
            timeout=300,
        )
        (wheel,) = (out / name).glob("*.whl")
        built[name] = zipfile.ZipFile(wheel)
    return built


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_provider_wheel_holds_runtime_code_only(wheels):
    names = wheels["provider"].namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"airflow_provider", "airflow_provider_optimization-0.1.0.dist-info"}
    assert not [n for n in names if "/emulator/" in n or "/testing/" in n or "optimization_emulator" in n]
    assert "airflow_provider/operators/cuopt.py" in names


def test_provider_requires_no_test_server_and_no_dead_dependency(wheels):
    requires = _metadata(wheels["provider"]).get_all("Requires-Dist")
    runtime = [r for r in requires if "extra ==" not in r]
    assert not [r for r in runtime if r.startswith(("asgiref", "highspy", "msgpack", "moto"))], runtime
    emulator_extra = [r for r in requires if 'extra == "emulator"' in r]
    assert emulator_extra == ['airflow-provider-optimization-emulator==0.1.0; extra == "emulator"']


def test_emulator_distribution_has_its_console_script_and_pytest_plugin(wheels):
    wheel = wheels["emulator"]
    names = wheel.namelist()
    assert "optimization_emulator/server.py" in names
    assert "optimization_emulator/testing/emulator.py" in names
    assert not [n for n in names if n.startswith("airflow_provider/")]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "optimization-emulator = optimization_emulator.__main__:main" in text
    assert "[pytest11]" in text and "optimization_emulator = optimization_emulator.pytest_plugin" in text


def test_console_script_takes_the_emulator_flags():
    script = Path(sys.executable).with_name("optimization-emulator")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=True)
    for flag in ("--port", "--api-key", "--app", "--nvcf-poll-seconds"):
        assert flag in out.stdout
