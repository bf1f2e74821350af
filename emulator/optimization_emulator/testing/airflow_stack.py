"""Launch a real Apache Airflow 3.x stack on this machine, for end-to-end tests and demos.

Four components run as separate processes, exactly as in a deployment: ``api-server``,
``scheduler`` (LocalExecutor), ``dag-processor`` and ``triggerer``, on sqlite in a throwaway
``AIRFLOW_HOME``, with the API on a random free port of 127.0.0.1. Each component gets its own
process group (``start_new_session=True``), so stopping or killing a component also reaches the
LocalExecutor workers and the trigger runner it forked.

Standard library only (no ``airflow`` import in this process: the stack runs the ``airflow`` CLI
next to ``sys.executable``).

    with AirflowStack(home, dags_folder, extra_env={"AIRFLOW_CONN_NEXTMV_DEFAULT": "..."}) as stack:
        run = stack.run_dag("example_nextmv_production_planning", "run-1", conf={...})
        assert run["state"] == "success"
        summary = stack.xcom("example_nextmv_production_planning", "run-1", "summarize")

Settings that matter (each was observed to break a real run when missing):

* ``[api_auth] jwt_secret`` identical in every process; otherwise workers get ``Invalid auth token``.
* ``[api] base_url`` pointing at the random port; workers derive the execution API URL from it.
* ``dags_are_paused_at_creation=False``; a run of a paused DAG stays ``queued`` for ever.
* ``load_examples=False``, ``parallelism`` (= LocalExecutor worker processes) small.
* ``[dag_processor] refresh_interval=5`` and the DAG files copied in *before* the dag-processor
  starts, so the first scan sees them.
* ``[scheduler] trigger_timeout_check_interval=2``, so defer timeouts fire close to on time.
* ``--skip-serve-logs``: no fixed ports 8793/8794; the api-server reads the local log files.
* ``SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``: REST v2 without a token.
* After health is OK, ``GET /execution/health`` once: the execution API is built lazily (3-5 s).

This module is the process lifecycle (environment, ``db migrate``, start/kill/stop). REST calls
come from base :class:`~.airflow_rest.AirflowRestClient`, log files from base
:class:`~.airflow_logs.AirflowLogFiles`; their public names are re-exported here.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Self

from optimization_emulator.testing.airflow_logs import AirflowLogFiles, format_log, tail_file
from optimization_emulator.testing.airflow_rest import TERMINAL_RUN_STATES, AirflowApiError, AirflowRestClient

__all__ = ["COMPONENTS", "TERMINAL_RUN_STATES", "AirflowApiError", "AirflowStack", "format_log"]

AIRFLOW = Path(sys.executable).with_name("airflow")

#: Component name -> ``airflow`` CLI arguments.
COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
#: Key of each component in ``GET /api/v2/monitor/health`` (the api-server answers it itself).
_HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _parse_ts(value: str | None) -> _dt.datetime | None:
    if not value:
        return None
    ts = _dt.datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=_dt.UTC)


class AirflowStack(AirflowRestClient, AirflowLogFiles):
    """A real Airflow 3 stack (api-server, scheduler, dag-processor, triggerer) in ``home``.

    :param home: ``AIRFLOW_HOME``; created if missing. DAGs are copied to ``home/dags``, the
        database is ``home/airflow.db``, logs go to ``home/logs``, and each component's
        stdout/stderr to ``home/<component>.out``.
    :param dags_folder: folder whose content is copied to ``home/dags`` before anything starts.
    :param extra_env: added to every component's environment last (so it may override the
        settings made here), e.g. connections as ``AIRFLOW_CONN_<ID>`` JSON or
        ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``.
    :param parallelism: ``[core] parallelism``, the number of LocalExecutor worker processes.
    :param plugins_folder: optional folder copied to ``home/plugins``.

    ``AIRFLOW*`` variables of the calling process are *not* passed on; only ``extra_env``.
    REST calls (:meth:`run_dag`, :meth:`xcom`, ...) are inherited from :class:`AirflowRestClient`,
    log files (:meth:`task_log_paths`, :meth:`tail`, ...) from :class:`AirflowLogFiles`.
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        extra_env: Mapping[str, str] | None = None,
        parallelism: int = 2,
        *,
        plugins_folder: Path | None = None,
        port: int | None = None,
    ):
        home = Path(home).resolve()
        self.source_dags_folder = Path(dags_folder).resolve()
        self.plugins_folder = Path(plugins_folder).resolve() if plugins_folder else None
        self.extra_env = dict(extra_env or {})
        self.parallelism = parallelism
        self.port = port or _free_port()
        AirflowRestClient.__init__(self, f"http://127.0.0.1:{self.port}", home / "dags")
        AirflowLogFiles.__init__(self, home, COMPONENTS)
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = self._build_env()
        self._atexit_registered = False
        #: Seconds spent in :meth:`start` (``migrate``, ``healthy``) and :meth:`stop`, for reports.
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ environment
    def _build_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.home / "plugins"),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                # >= 64 bytes (pyjwt warns below), identical in every process (gotcha: Invalid auth token).
                "AIRFLOW__API_AUTH__JWT_SECRET": "airflow-stack-test-only-" + "s" * 48,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
                "PATH": str(AIRFLOW.parent) + os.pathsep + os.environ.get("PATH", ""),
            }
        )
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> Self:
        """Migrate the database, start the four components and wait until all are healthy."""
        if not AIRFLOW.exists():
            raise FileNotFoundError(f"no airflow CLI next to {sys.executable}: {AIRFLOW}")
        _warn_if_no_bytecode()
        self.home.mkdir(parents=True, exist_ok=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(self.source_dags_folder, self.dags_folder, dirs_exist_ok=True, ignore=ignore)
        (self.home / "plugins").mkdir(exist_ok=True)
        if self.plugins_folder:
            shutil.copytree(self.plugins_folder, self.home / "plugins", dirs_exist_ok=True, ignore=ignore)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            t0 = time.monotonic()
            self._migrate(timeout)
            t1 = time.monotonic()
            self.timings["migrate"] = t1 - t0
            for name in COMPONENTS:
                self.start_component(name, wait=False)
            self.wait_healthy(timeout=max(1.0, timeout - (t1 - t0)))
            self.timings["healthy"] = time.monotonic() - t1
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, args: list[str], out: IO[bytes]) -> subprocess.Popen:
        """``airflow <args>`` in its own process group: killpg reaches the workers / trigger runner it forks."""
        return subprocess.Popen(
            [str(AIRFLOW), *args],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _migrate(self, timeout: float) -> None:
        out_path = self.home / "migrate.out"
        with open(out_path, "wb") as out:
            proc = self._spawn(["db", "migrate"], out)
            try:
                rc = proc.wait(timeout)
            except BaseException:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        if rc != 0:
            raise RuntimeError(f"airflow db migrate failed (rc={rc}):\n{tail_file(out_path, 60)}")

    def start_component(self, name: str, *, wait: bool = True, timeout: float = 90.0) -> subprocess.Popen:
        """Start one component (``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``).

        With ``wait``, return once the component reports a heartbeat newer than its start (or, for
        the api-server, once it answers). Its output is appended to ``home/<name>.out``.
        """
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r}; one of {sorted(COMPONENTS)}")
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is already running (pid {old.pid})")
        started = _utcnow()
        with open(self.home / f"{name}.out", "ab") as out:
            out.write(
                f"\n===== airflow {' '.join(COMPONENTS[name])} started {started.isoformat()}\n".encode()
            )
            out.flush()
            proc = self._spawn(COMPONENTS[name], out)
        self.procs[name] = proc
        if wait:
            self._wait_component(name, started, timeout)
        return proc

    def _wait_component(self, name: str, started: _dt.datetime, timeout: float) -> None:
        key = _HEALTH_KEYS.get(name)

        def ready() -> bool | None:
            health = self.health()
            if key is None:
                return True
            info = health.get(key) or {}
            beat = _parse_ts(info.get(f"latest_{key}_heartbeat"))
            # 1 s slack: heartbeats are stored with the DB's clock resolution
            if info.get("status") == "healthy" and beat and beat >= started - _dt.timedelta(seconds=1):
                return True
            return None

        self._poll(ready, timeout, f"{name} not healthy after restart")

    def kill_component(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
        """Send ``sig`` to the component's whole process group and wait for it to exit.

        If it is still alive after ``timeout`` seconds it is killed with SIGKILL. Whatever is left in
        the group afterwards (forked workers, the trigger runner) is SIGKILLed too. Returns the exit
        code of the component's main process. The component no longer counts as part of the stack
        (waits do not fail because it is gone) until :meth:`start_component` starts it again.
        """
        proc = self.procs.get(name)
        if proc is None:
            raise ValueError(f"component {name!r} is not running (never started, or already killed)")
        if proc.poll() is None:
            _killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
        self._reap(name)
        return proc.returncode

    def _reap(self, name: str) -> None:
        """SIGKILL what is left of the component's process group, reap it, forget it.

        Forgetting it matters: a process group id can be reused once the group is empty, so it must
        never be signalled again.
        """
        proc = self.procs.pop(name)
        _killpg(proc.pid, signal.SIGKILL)  # the leader if stuck, plus leftovers in its group
        proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every component's process group, wait up to ``timeout`` s, then SIGKILL the rest.

        Idempotent; safe to call on a stack that never started (also registered with ``atexit``).
        """
        procs = list(self.procs.items())
        if not procs:
            return
        t0 = time.monotonic()
        for _, p in procs:
            if p.poll() is None:
                _killpg(p.pid, signal.SIGTERM)
        deadline = t0 + timeout
        for name, p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
                self.timings[f"stop:{name}"] = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                pass
        for name, _ in procs:
            self._reap(name)
        self.timings["stop"] = time.monotonic() - t0

    @property
    def running(self) -> dict[str, bool]:
        """Component name -> whether its main process is alive (killed/stopped ones are absent)."""
        return {name: p.poll() is None for name, p in self.procs.items()}

    # ------------------------------------------------------------------ diagnostics
    def _check_alive(self, what: str) -> None:
        """Fail a REST wait at once when a component died, instead of at its timeout."""
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} died (rc={p.returncode}) while waiting: {what}\n{self.tail(name, 80)}"
                )

    def _diagnostics(self) -> str:
        """A timed-out REST wait shows what every component printed last."""
        return self.tails()

    def failure_report(self, dag_id: str, run_id: str, log_lines: int = 120) -> str:
        """Task states, the logs of every task that did not succeed, and the component log tails.

        Here rather than in a base: it is where REST state, task logs and component output meet.
        """
        parts = [f"===== DAG run {dag_id}/{run_id}"]
        try:
            parts.append(f"run state: {self.dag_run(dag_id, run_id).get('state')}")
            tis = self.task_instances(dag_id, run_id)
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            parts.append(f"(task instances unavailable: {exc})")
            tis = []
        for ti in tis:
            parts.append(f"  {ti['task_id']}: {ti['state']}")
        for ti in tis:
            if ti["state"] not in ("success", "skipped", None, "upstream_failed", "removed"):
                parts.append(
                    self.task_log_text(dag_id, run_id, ti["task_id"], ti.get("map_index"), log_lines)
                )
        parts.append(self.tails(25))
        return "\n".join(parts)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _warn_if_no_bytecode() -> None:
    """Without compiled bytecode every airflow process starts in ~4 s instead of ~1.7 s."""
    spec = importlib.util.find_spec("airflow")
    if not spec or not spec.submodule_search_locations:
        return
    cache = Path(next(iter(spec.submodule_search_locations))) / "__pycache__"
    if not any(cache.glob(f"*.{sys.implementation.cache_tag}.pyc")):
        print(
            "airflow_stack: apache-airflow has no compiled bytecode (PYTHONDONTWRITEBYTECODE?); every "
            "component will start slowly. Install with `uv pip install --compile-bytecode`.",
            file=sys.stderr,
        )
