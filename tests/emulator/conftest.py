"""Fixtures for the emulator tests: real emulator processes on real sockets, nothing mocked.

One emulator (``emulator``) serves the whole folder; tests that need other settings (limits, TTLs,
parallelism) start their own through ``start_emulator``. NVCF tests use ``nvcf`` (the shared emulator)
and ``nvcf_tight`` (a second one with short lifetimes, a pending phase and small limits).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from nextmv import PollingOptions

from optimization_emulator.testing.cuopt import CuOptServerClient, NvcfClient
from optimization_emulator.testing.emulator import EmulatorProcess

PY = shlex.quote(sys.executable)

#: Test apps of the shared emulator, by id.
TEST_APPS = {
    "slow": "sleep 30; cat",
    "echo": "cat",
    # Reports its environment (NEXTMV_*) and the options it got.
    "env": PY + " -c 'import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
    'if k.startswith("NEXTMV_")}))\'',
    "fail": "echo partial; echo 'first line' >&2; echo 'something broke: bad things' >&2; exit 3",
    "notjson": "echo this is not json",
    # A JSON list of 600,000 numbers: about 6.6 MB, over the 5 MiB inline limit.
    "bigjson": PY + " -c \"print('[' + ','.join(['1234567890'] * 600000) + ']')\"",
    # Multi-file: copies its inputs to its outputs and lists them.
    "files": 'cp -R "$NEXTMV_INPUT_DIR"/. "$NEXTMV_OUTPUT_DIR"/ '
    '&& ls "$NEXTMV_INPUT_DIR" > "$NEXTMV_OUTPUT_DIR/listing.txt"',
    # Tells its pid and its child's pid on stderr (the run log), then waits.
    "sleeper": 'sleep 60 & echo "pids $$ $!" >&2; wait',
}


class NextmvHttp:
    """Plain HTTP calls to the emulator's /v1 API, for what the official SDK does not expose."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self.emulator = emulator
        self.headers = {"Authorization": f"Bearer {emulator.api_key}"}

    def url(self, path: str) -> str:
        return self.emulator.url + path

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        headers = {**(self.headers if auth else {}), **kwargs.pop("headers", {})}
        return requests.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def new_run(self, app_id: str, **body: Any) -> str:
        response = self.request("POST", f"/v1/applications/{app_id}/runs", json=body)
        assert response.status_code == 200, response.text
        return response.json()["run_id"]

    def metadata(self, app_id: str, run_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/v1/applications/{app_id}/runs/{run_id}/metadata")
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, app_id: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """The run's metadata once it is final."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.metadata(app_id, run_id)
            if info["metadata"]["status_v2"] in ("succeeded", "failed", "canceled"):
                return info
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not finish within {timeout}s")

    def wait_for_status(self, app_id: str, run_id: str, status: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.metadata(app_id, run_id)["metadata"]["status_v2"] != status:
            assert time.monotonic() < deadline, f"run {run_id} never became {status}"
            time.sleep(0.05)

    def logs(self, app_id: str, run_id: str) -> str:
        return self.request("GET", f"/v1/applications/{app_id}/runs/{run_id}/logs").json()["log"]

    def upload(self, app_id: str, data: bytes) -> str:
        """Uploads ``data`` the SDK's way (no Authorization, no Content-Type); returns the upload_id."""
        grant = self.request("POST", f"/v1/applications/{app_id}/runs/uploadurl").json()
        put = requests.put(grant["upload_url"], data=data, timeout=30)
        assert put.status_code == 200, put.text
        return grant["upload_id"]

    @staticmethod
    def wait_until(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)


def _process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def process_alive() -> Callable[[int], bool]:
    return _process_alive


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(apps=TEST_APPS) as process:
        yield process


@pytest.fixture
def http(emulator: EmulatorProcess) -> NextmvHttp:
    return NextmvHttp(emulator)


@pytest.fixture
def http_client_for() -> Callable[[EmulatorProcess], NextmvHttp]:
    """Makes a :class:`NextmvHttp` for an emulator other than the shared one."""
    return NextmvHttp


@pytest.fixture
def no_leftover_faults(emu: EmulatorProcess) -> Iterator[None]:
    """No fault rule outlives a test, on the module's own ``emu`` (fault-injection modules use it)."""
    emu.clear_faults()
    yield
    emu.clear_faults()


@pytest.fixture
def api(emu: EmulatorProcess) -> NextmvHttp:
    """:class:`NextmvHttp` for the module's own ``emu`` (modules that define one)."""
    return NextmvHttp(emu)


@pytest.fixture
def polling() -> Callable[[], PollingOptions]:
    """Fresh fast polling options per call (the SDK mutates options objects it is given)."""
    return lambda: PollingOptions(
        initial_delay=0, delay=0.05, backoff=0, jitter=0, max_delay=0.2, max_duration=120
    )


@pytest.fixture
def start_emulator(tmp_path) -> Iterator[Callable[..., EmulatorProcess]]:
    """Starts emulators with custom settings; ``config`` (a dict) is written to a JSON config file."""
    started: list[EmulatorProcess] = []

    def start(*, config: dict[str, Any] | None = None, extra_args: tuple[str, ...] = (), **kwargs: Any):
        args = list(extra_args)
        if config is not None:
            path = tmp_path / f"config-{len(started)}.json"
            path.write_text(json.dumps(config))
            args += ["--config", str(path)]
        process = EmulatorProcess(extra_args=args, **kwargs).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


# -- NVCF / cuOpt ---------------------------------------------------------------------------------------
#: Settings of the ``nvcf_tight`` emulator: short token and upload-URL lifetimes, a pending phase of
#: one second for every request, and small size limits, so that expiry, polling and the large-result
#: path can be tested quickly.
NVCF_TIGHT = {
    "token_ttl": 2,
    "queue_delay": 1.0,
    "max_inline_result": 4096,
    "asset_url_ttl": 1,
    "asset_max_bytes": 1_000_000,
    "max_request_bytes": 200_000,
}


@pytest.fixture
def nvcf(emulator: EmulatorProcess) -> NvcfClient:
    """NVCF calls with the API key of the shared emulator."""
    return NvcfClient(emulator.url, emulator.api_key)


@pytest.fixture(scope="session")
def nvcf_tight_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    config = tmp_path_factory.mktemp("nvcf") / "tight.json"
    config.write_text(json.dumps({"nvcf": NVCF_TIGHT}))
    with EmulatorProcess(extra_args=("--config", str(config))) as process:
        yield process


@pytest.fixture
def nvcf_tight(nvcf_tight_emulator: EmulatorProcess) -> NvcfClient:
    return NvcfClient(nvcf_tight_emulator.url, nvcf_tight_emulator.api_key)


# -- the self-hosted cuOpt server (/cuopt) --------------------------------------------------------------
@pytest.fixture(scope="session")
def cuopt_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory (CUOPT_DATA_DIR) of ``cuopt_server_emulator``, with one problem file."""
    from optimization_emulator.testing.cuopt import TINY_LP

    root = tmp_path_factory.mktemp("cuopt-data")
    (root / "problems").mkdir()
    (root / "problems" / "tiny_lp.json").write_text(json.dumps(TINY_LP))
    return root


@pytest.fixture(scope="session")
def cuopt_result_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The result directory (CUOPT_RESULT_DIR) of ``cuopt_server_emulator``: results of 1 MB or more."""
    return tmp_path_factory.mktemp("cuopt-results")


@pytest.fixture(scope="session")
def cuopt_server_emulator(cuopt_data_dir: Path, cuopt_result_dir: Path) -> Iterator[EmulatorProcess]:
    """An emulator whose self-hosted cuOpt API runs as the legacy server (the default), with a data
    directory and a result directory (threshold CUOPT_MAX_RESULT=1000, i.e. 1 MB)."""
    args = (
        "--cuopt-server-data-dir",
        str(cuopt_data_dir),
        "--cuopt-server-result-dir",
        str(cuopt_result_dir),
    )
    with EmulatorProcess(extra_args=(*args, "--cuopt-server-max-result", "1000")) as process:
        yield process


@pytest.fixture
def cuopt_server(cuopt_server_emulator: EmulatorProcess) -> CuOptServerClient:
    """JSON calls to ``cuopt_server_emulator``'s ``/cuopt`` API."""
    return CuOptServerClient(cuopt_server_emulator.cuopt_server_url)


def running_solver_pid(emulator: EmulatorProcess, req_id: str, timeout: float = 20) -> int:
    """The pid of job ``req_id``'s solver process, once it runs (from the admin stats)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = emulator.stats()["cuopt_server"]["solver_pids"]
        if req_id in pids:
            return pids[req_id]
        assert time.monotonic() < deadline, f"job {req_id} never started solving"
        time.sleep(0.02)


@pytest.fixture
def solver_pid() -> Callable[..., int]:
    return running_solver_pid
