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
"""

from __future__ import annotations

import atexit
import datetime as _dt
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

__all__ = ["COMPONENTS", "AirflowApiError", "AirflowStack", "format_log"]

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

TERMINAL_RUN_STATES = frozenset({"success", "failed"})

T = TypeVar("T")


class AirflowApiError(RuntimeError):
    """A REST call to the api-server answered with an HTTP error status."""

    def __init__(self, method: str, url: str, status: int, body: str):
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}")
        self.method, self.url, self.status, self.body = method, url, status, body


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


# Keys repeated on every line of a task log (the task's identity) or rendered separately.
_LOG_CONTEXT_KEYS = frozenset(
    {
        "timestamp",
        "level",
        "event",
        "logger",
        "error_detail",
        "filename",
        "lineno",
        "dag_id",
        "task_id",
        "run_id",
        "try_number",
        "map_index",
        "ti_id",
        "ti",
    }
)


def format_log(path: Path, limit: int | None = None) -> str:
    """Render an Airflow 3 log file (one JSON object per line) as readable text.

    Lines that are not JSON are kept as they are. ``limit`` keeps only the last lines.
    """
    out: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if not isinstance(rec, dict):
            out.append(line)
            continue
        ts = str(rec.get("timestamp", ""))[:23]
        level = str(rec.get("level", "")).upper()
        logger = rec.get("logger", "")
        text = f"{ts} {level:<7} {rec.get('event', '')}"
        if logger:
            text += f"  [{logger}]"
        extra = {k: v for k, v in rec.items() if k not in _LOG_CONTEXT_KEYS}
        if extra:
            text += " " + json.dumps(extra, default=str)
        out.append(text)
        for err in rec.get("error_detail") or []:
            if isinstance(err, dict):
                out.append(f"    {err.get('exc_type')}: {err.get('exc_value')}")
                for fr in err.get("frames") or []:
                    out.append(f"      {fr.get('filename')}:{fr.get('lineno')} in {fr.get('name')}")
    return "\n".join(out[-limit:] if limit else out)


class AirflowStack:
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
        self.home = Path(home).resolve()
        self.source_dags_folder = Path(dags_folder).resolve()
        self.plugins_folder = Path(plugins_folder).resolve() if plugins_folder else None
        self.extra_env = dict(extra_env or {})
        self.parallelism = parallelism
        self.port = port or _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.dags_folder = self.home / "dags"
        self.logs_folder = self.home / "logs"
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

    def _migrate(self, timeout: float) -> None:
        out_path = self.home / "migrate.out"
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [str(AIRFLOW), "db", "migrate"],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout)
            except BaseException:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        if rc != 0:
            raise RuntimeError(f"airflow db migrate failed (rc={rc}):\n{_tail_file(out_path, 60)}")

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
            proc = subprocess.Popen(
                [str(AIRFLOW), *COMPONENTS[name]],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg reaches its workers / trigger runner
            )
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

    # ------------------------------------------------------------------ REST
    def api(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """Call REST API v2 (or any path on the api-server) and return the decoded JSON."""
        url = self.base_url + path
        req = urllib.request.Request(
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AirflowApiError(method, url, exc.code, exc.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def health(self) -> dict[str, Any]:
        return self.api("GET", "/api/v2/monitor/health", timeout=10)

    def _poll(self, fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
        deadline = time.monotonic() + timeout
        while True:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(
                        f"airflow {name} died (rc={p.returncode}) while waiting: {what}\n"
                        f"{self.tail(name, 80)}"
                    )
            try:
                res = fn()
                if res is not None:
                    return res
            except AirflowApiError as exc:
                if exc.status not in (404, 503):
                    raise
            except OSError:  # connection refused / reset while the api-server starts
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} (after {timeout:.0f} s)\n{self.tails()}")
            time.sleep(interval)

    def wait_healthy(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until metadatabase, scheduler, triggerer and dag-processor are healthy; warm up."""

        def ok() -> dict[str, Any] | None:
            h = self.health()
            if all(
                (h.get(k) or {}).get("status") == "healthy"
                for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            ):
                return h
            return None

        health = self._poll(ok, timeout, "Airflow stack not healthy")
        # The execution API (what workers talk to) is built lazily on its first request: 3-5 s.
        self._poll(
            lambda: self.api("GET", "/execution/health", timeout=60) or True,
            60,
            "execution API not answering",
        )
        return health

    # ------------------------------------------------------------------ DAG runs
    def wait_dag_parsed(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the dag-processor has serialized ``dag_id``; fail fast on its import error."""

        def parsed() -> dict[str, Any] | None:
            try:
                return self.api("GET", f"/api/v2/dags/{_q(dag_id)}")
            except AirflowApiError as exc:
                if exc.status != 404:
                    raise
            for err in self.import_errors():
                fname = err.get("filename") or ""
                try:
                    mentions = dag_id in Path(fname).read_text(errors="replace")
                except OSError:
                    mentions = False
                if mentions:
                    raise RuntimeError(
                        f"DAG {dag_id} cannot be imported ({fname}):\n{err.get('stack_trace')}"
                    )
            return None

        return self._poll(parsed, timeout, f"DAG {dag_id} not parsed")

    def import_errors(self) -> list[dict[str, Any]]:
        """Import errors of DAG files (``filename``, ``stack_trace``, ...)."""
        return self.api("GET", "/api/v2/importErrors?limit=1000")["import_errors"]

    def dags(self) -> list[dict[str, Any]]:
        return self.api("GET", "/api/v2/dags?limit=1000")["dags"]

    def dag_ids(self) -> list[str]:
        return [d["dag_id"] for d in self.dags()]

    def wait_all_parsed(self, timeout: float = 90.0) -> dict[str, list[str]]:
        """Wait until every DAG file in ``home/dags`` has produced DAGs or an import error.

        Only files Airflow itself would parse count (safe mode: the text contains both "airflow"
        and "dag"). Returns ``{relative file: [dag ids]}``; files with import errors are not in it
        (see :meth:`import_errors`).
        """
        files = {
            str(p.relative_to(self.dags_folder))
            for p in self.dags_folder.rglob("*.py")
            if "__pycache__" not in p.parts and _might_contain_dag(p)
        }

        def done() -> dict[str, list[str]] | None:
            by_file: dict[str, list[str]] = {}
            for dag in self.dags():
                by_file.setdefault(str(dag.get("relative_fileloc") or ""), []).append(dag["dag_id"])
            failed = {
                str(Path(e["filename"]).relative_to(self.dags_folder))
                if Path(e["filename"]).is_absolute()
                else e["filename"]
                for e in self.import_errors()
            }
            return by_file if files <= set(by_file) | failed else None

        return self._poll(done, timeout, f"not every DAG file in {self.dags_folder} was parsed")

    def trigger_dag(
        self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None, parse_timeout: float = 60.0
    ) -> dict[str, Any]:
        """Create a manual run of ``dag_id`` (unpausing it first) and return at once."""
        self.wait_dag_parsed(dag_id, parse_timeout)
        self.api("PATCH", f"/api/v2/dags/{_q(dag_id)}", {"is_paused": False})
        return self.api(
            "POST",
            f"/api/v2/dags/{_q(dag_id)}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}},
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def wait_dag_run(self, dag_id: str, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the run is ``success`` or ``failed`` and return it (REST ``DAGRunResponse``)."""

        def done() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        try:
            return self._poll(done, timeout, f"DAG run {dag_id}/{run_id} not finished", interval=0.5)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- task instances\n{self._ti_states(dag_id, run_id)}") from None

    def run_dag(
        self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None, timeout: float = 180.0
    ) -> dict[str, Any]:
        """Trigger ``dag_id`` and wait for the run to end; returns the run (check ``["state"]``)."""
        self.trigger_dag(dag_id, run_id, conf)
        return self.wait_dag_run(dag_id, run_id, timeout)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances?limit=1000")[
            "task_instances"
        ]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else ""): ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def _ti_states(self, dag_id: str, run_id: str) -> str:
        try:
            return json.dumps(self.task_states(dag_id, run_id), indent=1)
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            return f"(unavailable: {exc})"

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int | None = None
    ) -> Any:
        """The XCom value as native JSON (REST v2 returns it deserialized)."""
        path = (
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
            f"/xcomEntries/{_q(key)}"
        )
        if map_index is not None:
            path += f"?map_index={map_index}"
        return self.api("GET", path)["value"]

    def failure_report(self, dag_id: str, run_id: str, log_lines: int = 120) -> str:
        """Task states, the logs of every task that did not succeed, and the component log tails."""
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

    # ------------------------------------------------------------------ logs
    def _task_log_dir(self, dag_id: str, run_id: str, task_id: str, map_index: int | None) -> Path:
        d = self.logs_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return d / f"map_index={map_index}" if map_index is not None and map_index >= 0 else d

    def task_log_paths(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
    ) -> list[Path]:
        """The task's own log files, ``attempt=N.log``, in attempt order."""
        d = self._task_log_dir(dag_id, run_id, task_id, map_index)
        return sorted((p for p in d.glob("attempt=*.log") if ".log.trigger." not in p.name), key=_attempt_key)

    def trigger_log_paths(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
    ) -> list[Path]:
        """Logs written by the triggerer for the task's triggers, ``attempt=N.log.trigger.<job>.log``."""
        d = self._task_log_dir(dag_id, run_id, task_id, map_index)
        return sorted(d.glob("attempt=*.log.trigger.*.log"), key=_attempt_key)

    def task_log_text(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None, limit: int | None = None
    ) -> str:
        """All task and trigger log files of a task, rendered readably, one section per file."""
        parts = []
        paths = sorted(
            self.task_log_paths(dag_id, run_id, task_id, map_index)
            + self.trigger_log_paths(dag_id, run_id, task_id, map_index),
            key=_attempt_key,
        )
        for p in paths:
            parts.append(f"----- {p.relative_to(self.home)}\n{format_log(p, limit)}")
        return "\n".join(parts) if parts else f"(no log files for {dag_id}/{run_id}/{task_id})"

    def tail(self, component: str, n: int = 40) -> str:
        """Last ``n`` lines of a component's stdout/stderr (``home/<component>.out``)."""
        return f"----- airflow {component} (last {n} lines)\n" + _tail_file(self.home / f"{component}.out", n)

    def tails(self, n: int = 40) -> str:
        return "\n".join(self.tail(name, n) for name in COMPONENTS)


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _might_contain_dag(path: Path) -> bool:
    """Airflow's safe-mode heuristic: only files mentioning both "airflow" and "dag" are parsed."""
    text = path.read_text(errors="replace").lower()
    return "airflow" in text and "dag" in text


def _attempt_key(p: Path) -> tuple[int, str]:
    head = p.name.split(".log", 1)[0]  # attempt=N
    try:
        return int(head.split("=", 1)[1]), p.name
    except (IndexError, ValueError):
        return 0, p.name


def _tail_file(path: Path, n: int) -> str:
    if not path.exists():
        return "(no output)"
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 256 * 1024))
        lines = f.read().decode(errors="replace").splitlines()
    return "\n".join(lines[-n:])


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
