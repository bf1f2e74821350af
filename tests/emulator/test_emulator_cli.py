"""The command line: startup line, port file, clean shutdown on SIGTERM/SIGINT, config files, errors."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

EMULATOR = [sys.executable, "-m", "optimization_emulator", "--host", "127.0.0.1"]


class Cli:
    """The emulator started by hand, to watch its output and exit status."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port_file = tmp_path / "port"
        self.log = tmp_path / "emulator.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*EMULATOR, "--port", "0", "--port-file", str(self.port_file), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not self.port_file.exists():
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(self.port_file.read_text())}"
        while "listening" not in self.text():
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def api(self, method: str, path: str, key: str = "emulator-api-key", **kwargs) -> requests.Response:
        return requests.request(
            method, self.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10, **kwargs
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_runs_removes_the_temp_data_dir_and_exits_0(tmp_path, sig, process_alive):
    cli = Cli(tmp_path, "--app", 'sleeper=sleep 60 & echo "pids $$ $!" >&2; wait')
    assert f"emulator listening on {cli.url}" in cli.text()
    data_dir = Path(re.search(r"data dir: (\S+)", cli.text()).group(1))
    assert data_dir.is_dir()
    run_id = cli.api("POST", "/v1/applications/sleeper/runs", json={"input": {}}).json()["run_id"]
    logs = f"/v1/applications/sleeper/runs/{run_id}/logs"
    deadline = time.monotonic() + 10
    while "pids" not in cli.api("GET", logs).json()["log"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [int(p) for p in cli.api("GET", logs).json()["log"].split()[1:3]]
    assert all(process_alive(pid) for pid in pids)

    assert cli.stop(sig) == 0, cli.text()
    assert not data_dir.exists()
    deadline = time.monotonic() + 5
    while any(process_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"app processes {pids} outlived the emulator"
        time.sleep(0.05)
    assert "Traceback" not in cli.text()


def test_given_data_dir_is_kept_and_holds_the_runs(tmp_path):
    data_dir = tmp_path / "data"
    cli = Cli(tmp_path, "--data-dir", str(data_dir), "--app", "echo=cat")
    run_id = cli.api("POST", "/v1/applications/echo/runs", json={"input": {"a": 1}}).json()["run_id"]
    deadline = time.monotonic() + 10
    while (
        cli.api("GET", f"/v1/applications/echo/runs/{run_id}/metadata").json()["metadata"]["status_v2"]
        != "succeeded"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cli.stop() == 0
    assert (data_dir / "nextmv" / "runs" / run_id / "output.json").read_text() == '{"a":1}'


def test_toml_config_file_with_cli_overrides(tmp_path):
    config = tmp_path / "emulator.toml"
    config.write_text(
        'api_keys = ["from-file"]\n'
        "max_parallel_runs = 2\n"
        "[apps.planner]\n"
        'command = "cat"\n'
        'instances = ["prod", "staging"]\n'
        'name = "Planner"\n'
        "[apps.planner.format]\n"
        'input = "json"\n'
        'output = "json"\n'
    )
    cli = Cli(tmp_path, "--config", str(config), "--public-url", "http://files.example:9/base/")
    try:
        assert cli.api("GET", "/v1/applications").status_code == 401  # the default key is replaced
        app = cli.api("GET", "/v1/applications/planner", key="from-file").json()
        assert (app["name"], app["default_instance"]) == ("Planner", "prod")
        instances = cli.api("GET", "/v1/applications/planner/instances", key="from-file").json()
        assert [i["id"] for i in instances] == ["prod", "staging"]
        grant = cli.api("POST", "/v1/applications/planner/runs/uploadurl", key="from-file").json()
        assert grant["upload_url"].startswith("http://files.example:9/base/_presigned/nextmv/uploads/")
        assert "knapsack" in {a["id"] for a in cli.api("GET", "/v1/applications", key="from-file").json()}
    finally:
        assert cli.stop() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "no-equals-sign"], "ID=COMMAND"),
        (["--max-parallel-runs", "0"], "max_parallel_runs"),
        (["--config", "/nonexistent/emulator.json"], "cannot read config file"),
    ],
)
def test_bad_settings_exit_2_with_a_message(args, message):
    result = subprocess.run(
        [*EMULATOR, "--port", "0", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_port_in_use_exits_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*EMULATOR, "--port", str(port)], capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 1
    assert "cannot start the emulator" in result.stderr
