"""REST API v2 client for the api-server of a local Airflow 3 stack: DAG runs, task states, XComs.

Split from :mod:`optimization_emulator.testing.airflow_stack`, which starts the processes this client
talks to; :class:`~optimization_emulator.testing.airflow_stack.AirflowStack` is a subclass, so every
call here is also a method of the stack. On its own the client serves an api-server that runs
already, on this machine (the DAG-parse waits read the DAG files from disk).

The stack runs with ``SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``. Airflow 3.0 and 3.2+ then need no
token at all (their ``SimpleAllAdminMiddleware`` adds one to every request); Airflow 3.1 has no such
middleware and answers 401, but issues an admin token without credentials at ``GET /auth/token``, so
on a 401 the client fetches one there once and repeats the call with it. Standard library only,
like the stack.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["TERMINAL_RUN_STATES", "AirflowApiError", "AirflowRestClient"]

TERMINAL_RUN_STATES = frozenset({"success", "failed"})

T = TypeVar("T")


class AirflowApiError(RuntimeError):
    """A REST call to the api-server answered with an HTTP error status."""

    def __init__(self, method: str, url: str, status: int, body: str):
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}")
        self.method, self.url, self.status, self.body = method, url, status, body


class AirflowRestClient:
    """REST API v2 of the api-server at ``base_url``, whose dag-processor reads ``dags_folder``.

    Every wait polls through :meth:`_poll`, which tolerates the api-server not answering yet (refused
    connections, 404, 503). Subclasses hook into it: :meth:`_check_alive` fails a wait at once when
    a component process has died, :meth:`_diagnostics` adds context to a timeout.
    """

    def __init__(self, base_url: str, dags_folder: Path):
        self.base_url = base_url
        self.dags_folder = dags_folder
        #: Bearer token from ``GET /auth/token``; only fetched when the api-server answers 401 (3.1).
        self._token: str | None = None

    # ------------------------------------------------------------------ plumbing
    def api(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """Call REST API v2 (or any path on the api-server) and return the decoded JSON."""
        try:
            return self._call(method, path, body, timeout)
        except AirflowApiError as exc:
            if exc.status != 401 or path.startswith("/auth/"):
                raise
        # Airflow 3.1: all-admins mode without the middleware; a token (expired or none) is needed.
        self._token = self._call("GET", "/auth/token", None, timeout)["access_token"]
        return self._call(method, path, body, timeout)

    def _call(self, method: str, path: str, body: Any, timeout: float) -> Any:
        url = self.base_url + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(
            url, method=method, data=None if body is None else json.dumps(body).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AirflowApiError(method, url, exc.code, exc.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def health(self) -> dict[str, Any]:
        return self.api("GET", "/api/v2/monitor/health", timeout=10)

    def _check_alive(self, what: str) -> None:
        """Raise if what the wait for ``what`` depends on has died; the client alone knows of nothing."""

    def _diagnostics(self) -> str:
        """Text appended to a wait's timeout error; the stack gives the tails of its components."""
        return ""

    def _poll(self, fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
        """Call ``fn`` until it returns something other than None; ``what`` names it in errors."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(what)
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
                raise TimeoutError(f"{what} (after {timeout:.0f} s)\n{self._diagnostics()}")
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

    # ------------------------------------------------------------------ DAGs
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
        """Wait until every DAG file in ``dags_folder`` has produced DAGs or an import error.

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

    # ------------------------------------------------------------------ DAG runs
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
        return self.api("GET", _run_path(dag_id, run_id))

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
        return self.api("GET", f"{_run_path(dag_id, run_id)}/taskInstances?limit=1000")["task_instances"]

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
        path = f"{_run_path(dag_id, run_id)}/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}"
        if map_index is not None:
            path += f"?map_index={map_index}"
        return self.api("GET", path)["value"]


def _q(part: str) -> str:
    """Quote one path segment: run ids such as ``manual__2025-01-01T00:00:00+00:00`` hold ``:`` and ``+``."""
    return urllib.parse.quote(part, safe="")


def _run_path(dag_id: str, run_id: str) -> str:
    """REST path of one DAG run, the prefix of its task instances and XComs."""
    return f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}"


def _might_contain_dag(path: Path) -> bool:
    """Airflow's safe-mode heuristic: only files mentioning both "airflow" and "dag" are parsed."""
    text = path.read_text(errors="replace").lower()
    return "airflow" in text and "dag" in text
