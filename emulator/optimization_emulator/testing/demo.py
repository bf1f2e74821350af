"""``python -m optimization_emulator.testing.demo`` (``make demo``): the example DAGs on a real Airflow.

Starts the local Nextmv/cuOpt emulator, then a real Airflow 3 stack (api-server, scheduler,
dag-processor, triggerer) in ``.demo/`` under the repository root (wiped first), with connections
pointing at the emulator (the cuOpt one names the function ``cuopt``). Runs every DAG of
``example_dags/`` whose id starts with ``example_`` (Nextmv production planning, cuOpt routing),
shows the task states as they change, and prints where each run's files landed (the paths in the
tasks' XComs), where its solution landed (the file its sensor stored) and the final task's
summary. Everything is stopped at the end, on Ctrl-C too.

Exit status: 0 when every DAG run succeeded; 1 otherwise, after printing the failed tasks' logs.
``--keep-running`` leaves the stack up afterwards (the UI needs no login) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optimization_emulator.testing.airflow_stack import AirflowApiError, AirflowStack
from optimization_emulator.testing.emulator import EmulatorProcess

#: Defaults relative to the working directory (``make demo`` runs from the repository root).
EXAMPLE_DAGS = Path("example_dags")
DEMO_DIR = Path(".demo")
API_KEY = "demo-api-key"
DAG_PREFIX = "example_"


def say(msg: str = "") -> None:
    print(msg, flush=True)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the stack is stopped either way."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _uninterruptible() -> Iterator[None]:
    """A second Ctrl-C must not abandon a half-stopped stack."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _watch(stack: AirflowStack, runs: dict[str, str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait for every run; print each task state change. Returns ``{dag_id: dag run}``."""
    seen: dict[tuple[str, str], str | None] = {}
    finished: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while len(finished) < len(runs):
        for name, alive in stack.running.items():
            if not alive:
                raise RuntimeError(f"airflow {name} exited during the demo\n{stack.tail(name, 80)}")
        for dag_id, run_id in runs.items():
            if dag_id in finished:
                continue
            try:
                states = stack.task_states(dag_id, run_id)
                run = stack.dag_run(dag_id, run_id)
            except OSError:
                continue
            for task_id, state in states.items():
                if seen.get((dag_id, task_id), "?") != state and state:
                    seen[(dag_id, task_id)] = state
                    note = "   (waiting in the triggerer, no worker slot held)" if state == "deferred" else ""
                    say(f"  {time.monotonic() - t0:6.1f}s  {dag_id}.{task_id}: {state}{note}")
            if run["state"] in ("success", "failed"):
                finished[dag_id] = run
                say(f"  {time.monotonic() - t0:6.1f}s  {dag_id}: run {run['state'].upper()}")
        if time.monotonic() > deadline:
            missing = sorted(set(runs) - set(finished))
            raise TimeoutError(f"DAG runs not finished after {timeout:.0f} s: {missing}")
        time.sleep(1.0)
    return finished


def _local_files(value: Any) -> list[str]:
    """Strings in an XCom value (str, list or dict values) that name existing local files."""
    if isinstance(value, str):
        candidates = [value]
    elif isinstance(value, list):
        candidates = [v for v in value if isinstance(v, str)]
    elif isinstance(value, dict):
        candidates = [v for v in value.values() if isinstance(v, str)]
    else:
        return []
    out = []
    for c in candidates:
        path = Path(c.removeprefix("file://"))
        if len(c) < 4096 and path.is_absolute() and path.is_file():
            out.append(str(path))
    return out


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"


def _report(stack: AirflowStack, dag_id: str, run_id: str) -> list[str]:
    """Every task's return value, the files they name, where the solution landed (the files a
    sensor returned) and the final task's summary. Returns the solution paths."""
    tis = sorted(stack.task_instances(dag_id, run_id), key=lambda ti: ti.get("end_date") or "")
    say(f"\n=== {dag_id}  (run {run_id})")
    last_value: Any = None
    files: list[tuple[str, str]] = []
    solutions: list[tuple[str, str]] = []
    for ti in tis:
        try:
            value = stack.xcom(dag_id, run_id, ti["task_id"])
        except AirflowApiError as exc:
            if exc.status == 404:  # a task without a return value
                continue
            raise
        last_value = value
        text = json.dumps(value, default=str)
        say(f"  {ti['task_id']:<24} -> {text if len(text) <= 160 else text[:157] + '...'}")
        named = _local_files(value)
        files += [(ti["task_id"], f) for f in named if f not in {known for _, known in files}]
        if str(ti.get("operator") or "").endswith("Sensor"):  # the sensors store the solutions
            solutions += [(ti["task_id"], f) for f in named]
    if files:
        say("\n  Files:")
        for task_id, f in files:
            say(f"    {f}   ({_size(Path(f).stat().st_size)}, from {task_id})")
    for task_id, f in solutions:
        say(f"\n  Solution landed at {f}   (stored by {task_id})")
    if isinstance(last_value, dict):
        say("\n  Summary:")
        width = max(len(str(k)) for k in last_value) if last_value else 0
        for k, v in last_value.items():
            say(f"    {k:<{width}}  {v}")
    return [f for _, f in solutions]


def _example_dag_ids(stack: AirflowStack, wanted: list[str] | None) -> list[str]:
    parsed = stack.wait_all_parsed()
    errors = stack.import_errors()
    for err in errors:
        say(f"!! import error in {err.get('filename')}:\n{err.get('stack_trace')}")
    dag_ids = sorted(d for ids in parsed.values() for d in ids if d.startswith(DAG_PREFIX))
    if wanted:
        unknown = sorted(set(wanted) - set(dag_ids))
        if unknown:
            raise SystemExit(f"unknown DAG(s) {unknown}; available: {dag_ids}")
        dag_ids = [d for d in dag_ids if d in wanted]
    if errors:
        raise SystemExit("example DAG files failed to import (see above)")
    if not dag_ids:
        raise SystemExit(f"no DAG whose id starts with {DAG_PREFIX!r} in the DAG folder")
    return dag_ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dag", action="append", help="run only this DAG id (repeatable)")
    parser.add_argument(
        "--dags-folder", type=Path, default=EXAMPLE_DAGS, help="DAG files to run (default ./example_dags)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=DEMO_DIR, help="wiped, then holds AIRFLOW_HOME (default ./.demo)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds to wait for all runs (default 900)"
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="leave Airflow up at the end, until Ctrl-C"
    )
    args = parser.parse_args(argv)

    workdir, dags_folder = args.workdir.resolve(), args.dags_folder.resolve()
    if not dags_folder.is_dir():
        raise SystemExit(f"DAG folder {dags_folder} does not exist")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    home = workdir / "airflow"
    t_start = time.monotonic()
    failed: list[str] = []
    with _sigterm_as_exit(), contextlib.ExitStack() as cleanup:
        try:
            say("Starting the Nextmv / cuOpt emulator ...")
            emulator = cleanup.enter_context(EmulatorProcess(api_keys=(API_KEY,)))
            say(f"  emulator at {emulator.url}")
            say(f"Starting Airflow (api-server, scheduler, dag-processor, triggerer) in {home} ...")
            stack = AirflowStack(home, dags_folder, extra_env=emulator.airflow_connections())
            cleanup.callback(stack.stop)
            stack.start()
            say(
                f"  healthy after {stack.timings.get('migrate', 0) + stack.timings.get('healthy', 0):.0f} s;"
                f" UI and REST API at {stack.base_url} (no login)"
            )
            dag_ids = _example_dag_ids(stack, args.dag)
            stamp = time.strftime("%Y%m%dT%H%M%S")
            runs = {dag_id: f"demo-{stamp}" for dag_id in dag_ids}
            say(f"Running {', '.join(dag_ids)} ...")
            for dag_id, run_id in runs.items():
                stack.trigger_dag(dag_id, run_id)
            results = _watch(stack, runs, args.timeout)
            landed: dict[str, list[str]] = {}
            for dag_id, run in results.items():
                if run["state"] == "success":
                    landed[dag_id] = _report(stack, dag_id, runs[dag_id])
                else:
                    failed.append(dag_id)
                    say(f"\n=== {dag_id} FAILED\n" + stack.failure_report(dag_id, runs[dag_id]))
            if landed:
                say("\nSolutions:")
                width = max(len(d) for d in landed)
                for dag_id, paths in landed.items():
                    say(f"  {dag_id:<{width}}  {', '.join(paths) or '(no file returned by a sensor)'}")
            say(f"\nEmulator: {json.dumps(emulator.stats(), default=str)}")
            say(f"Logs: {home / 'logs'}; component output: {home}/*.out")
            if args.keep_running:
                say(f"\nAirflow keeps running at {stack.base_url}; Ctrl-C stops it.")
                while all(stack.running.values()):
                    time.sleep(1)
        except KeyboardInterrupt:
            say("\nInterrupted; stopping everything ...")
            failed.append("(interrupted)")
        except Exception:  # noqa: BLE001 - report, stop everything, exit 1
            traceback.print_exc()
            failed.append("(demo error, see above)")
        finally:
            with _uninterruptible():
                say("Stopping Airflow and the emulator ...")
                cleanup.close()
    say(
        f"Done in {time.monotonic() - t_start:.0f} s: "
        + ("FAILED " + ", ".join(failed) if failed else "all succeeded")
    )
    if "(interrupted)" in failed:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
