"""Start the local Nextmv Cloud / NVCF (cuOpt) emulator as a subprocess, for tests and demos.

Standard library and ``requests`` only: test conftests and the Airflow demo launcher import this
without pulling in aiohttp or solvers.

    with EmulatorProcess(apps={"slow": "sleep 30; cat"}) as emulator:
        client = nextmv.cloud.Client(api_key=emulator.api_key, url=emulator.url)
        ...
        assert emulator.stats()["nextmv"]["uploads"] == 1

    with EmulatorProcess(clients={"my-client": "my-secret"}) as emulator:
        # NVCF at emulator.url + "/v2/nvcf", client-credentials tokens from emulator.token_url
        assert emulator.stats()["nvcf"]["assets_live"] == []

    with EmulatorProcess() as emulator:
        # the self-hosted cuOpt server API (/cuopt) on its own port, for cuopt-sh-client:
        # CuOptServiceSelfHostClient(ip="127.0.0.1", port=str(emulator.cuopt_server_port))
        assert emulator.stats()["cuopt_server"]["requests_submitted"] == 0
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import requests

from optimization_emulator.nvcf_config import DEFAULT_CLIENTS  # standard library only

_LOG_TAIL_BYTES = 8000


class EmulatorError(RuntimeError):
    """The emulator did not start (the message ends with its log)."""


class EmulatorProcess:
    """Runs `python -m optimization_emulator` as a subprocess on 127.0.0.1 with a free port."""

    def __init__(
        self,
        *,
        api_keys: Sequence[str] = ("test-api-key",),
        apps: dict[str, str] | None = None,
        clients: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        data_dir: str | Path | None = None,
        log_path: str | Path | None = None,
        startup_timeout: float = 30.0,
        tls: tuple[str | Path, str | Path] | None = None,
        cuopt_server_port: int | None = 0,
    ) -> None:
        """``cuopt_server_port``: where the self-hosted cuOpt server API is served (0: a free port,
        None: not at all); its other settings go in ``extra_args`` (``--cuopt-server-*``)."""
        if not api_keys:
            raise ValueError("at least one API key is needed")
        self._api_keys = tuple(api_keys)
        self._apps = dict(apps or {})
        self._clients = dict(clients) if clients else None  # None: the emulator's default client
        self._extra_args = tuple(extra_args)
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._log_path = Path(log_path) if log_path is not None else None
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._port: int | None = None
        self._cuopt_server_port_wanted = cuopt_server_port
        self._cuopt_server_port: int | None = None
        self._main_port_wanted = 0
        #: (certificate, key) PEM files: serve https; the helper trusts that certificate itself.
        self._tls = (Path(tls[0]), Path(tls[1])) if tls else None

    # -- lifecycle ----------------------------------------------------------------------------------

    def command(self, port_file: Path) -> list[str]:
        """The command line this helper runs."""
        args = [sys.executable, "-m", "optimization_emulator", "--host", "127.0.0.1"]
        args += ["--port", str(self._main_port_wanted), "--port-file", str(port_file)]
        if self._cuopt_server_port_wanted is not None:
            args += ["--cuopt-server-port", str(self._cuopt_server_port_wanted)]
            args += ["--cuopt-server-port-file", str(self._cuopt_server_port_file(port_file))]
        for key in self._api_keys:
            args += ["--api-key", key]
        for app_id, command in self._apps.items():
            args += ["--app", f"{app_id}={command}"]
        for client_id, secret in (self._clients or {}).items():
            args += ["--client", f"{client_id}:{secret}"]
        if self._data_dir is not None:
            args += ["--data-dir", str(self._data_dir)]
        if self._tls is not None:
            args += ["--tls-cert", str(self._tls[0]), "--tls-key", str(self._tls[1])]
        return args + list(self._extra_args)

    @staticmethod
    def _cuopt_server_port_file(port_file: Path) -> Path:
        return port_file.with_name("cuopt-server-port")

    def start(self) -> EmulatorProcess:
        """Starts the emulator and waits until ``/_emulator/health`` answers."""
        if self._process is not None:
            raise RuntimeError("the emulator is already started")
        self._scratch = tempfile.TemporaryDirectory(prefix="emulator-process-")
        scratch = Path(self._scratch.name)
        log_path = self._log_path or scratch / "emulator.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(log_path, "ab")  # noqa: SIM115  (closed in stop())
        self._log_path = log_path
        port_file = scratch / "port"
        self._process = subprocess.Popen(
            self.command(port_file),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            self._wait_until_healthy(port_file)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_healthy(self, port_file: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmulatorError(
                    f"the emulator exited with status {self._process.returncode}:\n{self.log_tail()}"
                )
            if self._port is None and port_file.exists():  # written once every site is up
                self._port = int(port_file.read_text(encoding="utf-8"))
                if self._cuopt_server_port_wanted is not None:
                    text = self._cuopt_server_port_file(port_file).read_text(encoding="utf-8")
                    self._cuopt_server_port = int(text)
            if self._port is not None:
                try:
                    if requests.get(f"{self.url}/_emulator/health", timeout=2, verify=self._verify).ok:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        raise EmulatorError(
            f"the emulator did not answer within {self._startup_timeout}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._scratch is not None and self._log_path is not None:
            if self._log_path.is_relative_to(self._scratch.name):
                self._log_path = None  # removed with the scratch folder
            self._scratch.cleanup()
            self._scratch = None
        self._port = None
        self._cuopt_server_port = None

    def restart(self) -> EmulatorProcess:
        """Stops the emulator and starts it again on the same ports, as a server restart does: what
        it held in memory (runs, NVCF requests, self-hosted cuOpt jobs) is gone afterwards."""
        port, cuopt_port = self._port, self._cuopt_server_port
        self.stop()
        wanted = (self._main_port_wanted, self._cuopt_server_port_wanted)
        self._main_port_wanted = port or 0
        if cuopt_port is not None:
            self._cuopt_server_port_wanted = cuopt_port
        try:
            return self.start()
        finally:
            self._main_port_wanted, self._cuopt_server_port_wanted = wanted

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- facts --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self._port}"

    @property
    def cuopt_server_port(self) -> int:
        """The port of the self-hosted cuOpt server API (``CuOptServiceSelfHostClient(port=...)``)."""
        if self._cuopt_server_port is None:
            raise RuntimeError("the emulator is not running, or not serving the self-hosted cuOpt API")
        return self._cuopt_server_port

    @property
    def cuopt_server_url(self) -> str:
        """Base URL of the self-hosted cuOpt server API (its routes are under ``/cuopt``)."""
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.cuopt_server_port}"

    @property
    def _verify(self) -> str | bool:
        return str(self._tls[0]) if self._tls else True

    @property
    def api_key(self) -> str:
        return self._api_keys[0]

    @property
    def nvcf_url(self) -> str:
        """Base of the NVCF API (``CUOPT_API_URL`` for the cuOpt thin client)."""
        return f"{self.url}/v2/nvcf"

    @property
    def token_url(self) -> str:
        """The client-credentials token endpoint (``CUOPT_AUTH_URL``)."""
        return f"{self.url}/token"

    @property
    def clients(self) -> dict[str, str]:
        """Client id -> secret accepted by the token endpoint (default: emulator-client:emulator-secret)."""
        return dict(self._clients or DEFAULT_CLIENTS)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        """The end of the emulator's log (stdout and stderr)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        data = self._log_path.read_bytes()[-max_bytes:]
        return data.decode("utf-8", errors="replace")

    def airflow_connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables pointing the provider's default connections at this emulator.

        ``nextmv_default`` (Nextmv Cloud) and ``cuopt_default`` (cuOpt on NVCF): host = the
        emulator's URL, password = its API key; the cuOpt one also names the function to invoke
        (extra ``function_name`` = ``cuopt``, the emulator's default function). When the self-hosted
        cuOpt API is served, also ``cuopt_server_default`` (type ``cuopt_server``: host with its
        scheme, port; no credentials, as the real server has none). Used by the demo, the e2e stack
        and the pytest plugin's ``optimization_connections`` fixture.
        """
        conns = {
            "NEXTMV_DEFAULT": {"conn_type": "nextmv", "host": self.url, "password": self.api_key},
            "CUOPT_DEFAULT": {
                "conn_type": "cuopt",
                "host": self.url,
                "password": self.api_key,
                "extra": {"function_name": "cuopt"},
            },
        }
        if self._cuopt_server_port is not None:
            conns["CUOPT_SERVER_DEFAULT"] = {
                "conn_type": "cuopt_server",
                "host": f"{'https' if self._tls else 'http'}://127.0.0.1",
                "port": self._cuopt_server_port,
            }
        return {f"AIRFLOW_CONN_{k}": json.dumps(v) for k, v in conns.items()}

    # -- admin endpoints ----------------------------------------------------------------------------

    def _admin(self, method: str, path: str, *, json_body: Any = None, **params: Any) -> Any:
        response = requests.request(
            method,
            f"{self.url}/_emulator/{path}",
            params=params or None,
            json=json_body,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
            verify=self._verify,
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        """``GET /_emulator/stats``: counters per API, e.g. ``stats()["nextmv"]["uploads"]``,
        ``stats()["nvcf"]["invocations"]``, ``stats()["cuopt_server"]["requests_submitted"]``."""
        return self._admin("GET", "stats")

    def requests_log(self, limit: int = 1000) -> list[dict]:
        """``GET /_emulator/requests``: the most recent requests, oldest first."""
        return self._admin("GET", "requests", limit=limit)

    def reset(self) -> None:
        """``POST /_emulator/reset``: zero the counters, clear the request log and the fault rules
        (runs stay)."""
        self._admin("POST", "reset")

    # -- fault injection (docs/emulator.md, "Fault injection") ----------------------------------------

    def add_faults(self, *rules: Mapping[str, Any]) -> list[str]:
        """``POST /_emulator/faults``: installs rules, e.g. ``{"action": "status", "status": 503,
        "method": "POST", "route": "/v1/applications/{app_id}/runs"}``; returns their ids.
        A malformed rule raises ValueError with the emulator's message (nothing is installed)."""
        try:
            answer = self._admin("POST", "faults", json_body={"rules": [dict(rule) for rule in rules]})
        except requests.HTTPError as exc:
            if exc.response is None or exc.response.status_code != 400:
                raise
            raise ValueError(exc.response.json().get("error", exc.response.text)) from None
        return answer["ids"]

    def faults(self) -> list[dict]:
        """``GET /_emulator/faults``: the rules with ``remaining``, ``hits`` and ``matched``."""
        return self._admin("GET", "faults")["rules"]

    def clear_faults(self) -> None:
        """``DELETE /_emulator/faults``: removes every rule (counters stay)."""
        self._admin("DELETE", "faults")
