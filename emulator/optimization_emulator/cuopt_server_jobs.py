"""The self-hosted cuOpt server's asynchronous job store: queued -> running -> completed | aborted.

A submitted job waits ``queue_delay`` seconds and for a free solver slot (``max_parallel``), then runs
in **its own process** (``cuopt_server_worker.run``). A process per job, rather than the pool that
serves NVCF, because aborting a running job must stop exactly that solver: the process is killed,
as the real server stops its solver process (reference §4.3). Processes are forked from a
``forkserver`` that has the solvers imported already, so a job starts in milliseconds, and the
event loop is never forked.

Jobs live in memory (their files under the data dir), so a restart of the emulator loses them —
as a restart of the real server does: afterwards every old id is unknown (404). Results stay until
``DELETE /cuopt/solution/{id}``; reading them does not consume them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import multiprocessing
import shutil
import time
import uuid
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from optimization_emulator.cuopt_server_worker import INCUMBENTS, OUTCOME, RESULT, ServerJob, run

logger = logging.getLogger("optimization_emulator.cuopt_server")
#: Imported once in the fork server, so that forked solver processes start ready to solve.
_PRELOAD = [
    "optimization_emulator.cuopt_server_worker",
    "optimization_emulator.cuopt",
    "optimization_emulator.cuopt.decode",
    "optimization_emulator.cuopt.lp",
    "optimization_emulator.cuopt.routing",
    "optimization_emulator.cuopt.routing_search",
]
#: The sentinel ``/incumbents`` answers once a job is done and its incumbents are all read.
INCUMBENT_SENTINEL = [{"solution": [], "cost": None, "bound": None}]


class State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"


@dataclasses.dataclass
class Job:
    spec: ServerJob
    #: Proxy server with a result directory: (directory, file name, threshold, mode), written at each GET.
    result_file_at_get: tuple[str, str, int, int] | None = None
    state: State = State.QUEUED
    #: ``lp``, ``milp``, ``batch`` or ``routing``: known at submission (proxy) or once solved (legacy).
    kind: str | None = None
    created: float = dataclasses.field(default_factory=time.time)
    process: BaseProcess | None = None
    outcome: dict[str, Any] | None = None
    incumbent_offset: int = 0
    finished: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def req_id(self) -> str:
        return self.spec.req_id

    @property
    def done(self) -> bool:
        return self.state in (State.COMPLETED, State.ABORTED)

    @property
    def failed(self) -> bool:
        """Ended without a result: an invalid problem (legacy), a solver error, a died solver."""
        return self.state is State.COMPLETED and self.outcome is not None and self.outcome["status"] != 200

    @property
    def directory(self) -> Path:
        return Path(self.spec.job_dir)

    @property
    def result_path(self) -> Path:
        return self.directory / RESULT


class JobBook:
    """The jobs of one server, by id; ``on_finished(job)`` is told how each one ended."""

    def __init__(
        self,
        root: Path,
        max_parallel: int,
        queue_delay: float,
        on_finished: Callable[[Job], None] = lambda job: None,
    ) -> None:
        self.root = root
        self.queue_delay = queue_delay
        self.on_finished = on_finished
        self._slots = asyncio.Semaphore(max_parallel)
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        # A restart loses every job: files a previous run left behind are not jobs any more.
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def job_dir(self, req_id: str) -> Path:
        path = self.root / req_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def submit(self, spec: ServerJob, result_file_at_get: tuple[str, str, int, int] | None = None) -> Job:
        job = Job(spec, result_file_at_get)
        self._jobs[job.req_id] = job
        task = asyncio.get_running_loop().create_task(self._execute(job))
        self._tasks[job.req_id] = task
        task.add_done_callback(lambda _task: self._tasks.pop(job.req_id, None))
        return job

    async def _execute(self, job: Job) -> None:
        try:
            if self.queue_delay:
                await asyncio.sleep(self.queue_delay)
            async with self._slots:
                if job.state is not State.QUEUED:
                    return
                job.state = State.RUNNING
                process = self._context.Process(target=run, args=(job.spec,), daemon=True)
                await asyncio.to_thread(process.start)
                job.process = process
                if job.state is State.ABORTED:  # aborted while the process was starting
                    process.kill()
                await _exited(process)
                if job.state is State.ABORTED:
                    return
                job.outcome = await asyncio.to_thread(_read_outcome, job, process.exitcode)
                job.kind = job.kind or job.outcome.get("kind")
                job.state = State.COMPLETED
        except asyncio.CancelledError:
            if job.state is State.QUEUED:
                job.state = State.ABORTED
            raise
        except Exception as exc:
            logger.exception("job %s failed in the emulator", job.req_id)
            job.outcome = {"status": 500, "message": f"internal emulator error: {exc}", "kind": None}
            job.state = State.COMPLETED
        finally:
            if job.process is not None:
                job.process.join(0)  # reaps it (it has exited, or was killed)
            job.finished.set()
            if job.done:
                self.on_finished(job)

    def add_finished(self, spec: ServerJob, outcome: dict[str, Any], kind: str | None = None) -> Job:
        """A job that is done already (an uploaded solution): its result is in its directory."""
        job = Job(spec, state=State.COMPLETED, kind=kind, outcome=outcome)
        job.finished.set()
        self._jobs[job.req_id] = job
        return job

    # -- reading ------------------------------------------------------------------------------------
    def get(self, req_id: str) -> Job | None:
        return self._jobs.get(req_id)

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def count(self, state: State | None = None) -> int:
        return sum(1 for job in self._jobs.values() if state is None or job.state is state)

    def solver_pids(self) -> dict[str, int]:
        """Running jobs' solver processes (tests prove an abort kills them)."""
        return {
            job.req_id: job.process.pid
            for job in self._jobs.values()
            if job.state is State.RUNNING and job.process is not None and job.process.pid is not None
        }

    # -- changing -----------------------------------------------------------------------------------
    def abort(self, job: Job, *, queued: bool, running: bool) -> tuple[int, int]:
        """Aborts ``job`` if it is queued (and ``queued``) or running (and ``running``): the counts
        (queued, running) aborted. A running job's solver process is killed."""
        if job.state is State.QUEUED and queued:
            job.state = State.ABORTED
            task = self._tasks.get(job.req_id)
            if task is not None:
                task.cancel()
            return 1, 0
        if job.state is State.RUNNING and running:
            job.state = State.ABORTED
            if job.process is not None:
                with contextlib.suppress(ValueError, OSError):  # already gone or closed
                    job.process.kill()
            return 0, 1
        return 0, 0

    def remove(self, job: Job) -> None:
        """Forgets ``job`` and removes its files (its id is unknown afterwards)."""
        self._jobs.pop(job.req_id, None)
        shutil.rmtree(job.directory, ignore_errors=True)

    def take_incumbents(self, job: Job) -> list[dict[str, Any]]:
        """The incumbents found since the last call (a destructive read); the sentinel once the job
        is done and none are left."""
        path = job.directory / INCUMBENTS
        try:
            with path.open("rb") as handle:
                handle.seek(job.incumbent_offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        job.incumbent_offset += len(complete)
        found = [json.loads(line) for line in complete.splitlines() if line.strip()]
        if not found and job.done:
            return [dict(entry) for entry in INCUMBENT_SENTINEL]
        return found

    async def shutdown(self) -> None:
        """Stops every job: queued ones never run, running solvers are killed."""
        for job in self._jobs.values():
            self.abort(job, queued=True, running=True)
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


async def _exited(process: BaseProcess) -> None:
    """Waits, without a thread, until ``process`` has exited (its sentinel becomes readable)."""
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    sentinel = process.sentinel
    loop.add_reader(sentinel, lambda: gone.done() or gone.set_result(None))
    try:
        await gone
    finally:
        loop.remove_reader(sentinel)


def _read_outcome(job: Job, exitcode: int | None) -> dict[str, Any]:
    try:
        return json.loads((job.directory / OUTCOME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {
            "status": 500,
            "message": f"the solver process died while solving this request (exit code {exitcode})",
            "kind": None,
        }
