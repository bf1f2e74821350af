"""NVCF requests from acceptance to their one and only final answer.

An accepted invocation waits ``--nvcf-queue-delay`` seconds (so tests can see a pending phase),
then runs in a pool of solver processes (``--nvcf-max-parallel``; real CPU work stays off the
event loop and runs in parallel). Clients long-poll: each waiting HTTP request is a coroutine
blocked on the invocation's :class:`asyncio.Event` with a timeout — no thread per waiter, so
thousands of concurrent polls cost little. The final answer is handed out **once**
(:meth:`InvocationBook.take`); afterwards the request id is unknown (404), as NVCF purges a
request after its first non-pending answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool

from optimization_emulator.nvcf_worker import JobResult, SolveJob, run_job

logger = logging.getLogger("optimization_emulator.nvcf")
#: NVCF errorCode for an unknown/unexpected platform error.
UNEXPECTED_ERROR = 900


class SolverPool:
    """Solver processes, started on first use (``spawn``: no fork of the running event loop)."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.max_workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    async def run(self, job: SolveJob) -> JobResult:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool(), run_job, job)
        except BrokenProcessPool:  # a solver process died (killed, out of memory): start afresh
            self.shutdown()
            return JobResult(500, "the solver process died while solving this request", UNEXPECTED_ERROR)

    def shutdown(self) -> None:
        """Stops the pool now, killing solves in progress (they have nobody left to answer)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list((executor._processes or {}).values())  # no public API for this
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()


@dataclasses.dataclass
class Invocation:
    req_id: str
    function_id: str
    version_id: str
    created: float = dataclasses.field(default_factory=time.time)
    result: JobResult | None = None
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class InvocationBook:
    """Invocations that have no delivered final answer yet, by request id."""

    def __init__(self, pool: SolverPool, queue_delay: float) -> None:
        self.pool = pool
        self.queue_delay = queue_delay
        self._invocations: dict[str, Invocation] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self, function_id: str, version_id: str, prepare: Callable[[str], SolveJob | JobResult]
    ) -> Invocation:
        """Accepts a request; ``prepare(req_id)`` runs when it leaves the queue (that is when NVCF's
        worker fetches the input assets) and gives the job, or a final result such as a 910."""
        invocation = Invocation(str(uuid.uuid4()), function_id, version_id)
        self._invocations[invocation.req_id] = invocation
        task = asyncio.get_running_loop().create_task(self._execute(invocation, prepare))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return invocation

    async def _execute(self, invocation: Invocation, prepare: Callable[[str], SolveJob | JobResult]) -> None:
        try:
            if self.queue_delay:
                await asyncio.sleep(self.queue_delay)
            job = prepare(invocation.req_id)
            invocation.result = job if isinstance(job, JobResult) else await self.pool.run(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("request %s failed in the emulator", invocation.req_id)
            invocation.result = JobResult(500, f"internal emulator error: {exc}", UNEXPECTED_ERROR)
        finally:
            invocation.done.set()

    def get(self, req_id: str) -> Invocation | None:
        return self._invocations.get(req_id)

    @staticmethod
    async def wait(invocation: Invocation, seconds: float) -> bool:
        """Whether ``invocation`` ends within ``seconds`` (a long poll)."""
        if not invocation.done.is_set() and seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await invocation.done.wait()
        return invocation.done.is_set() and invocation.result is not None

    def take(self, req_id: str) -> Invocation | None:
        """The finished invocation, removed: its answer can be handed out only once."""
        invocation = self._invocations.get(req_id)
        if invocation is None or invocation.result is None:
            return None
        return self._invocations.pop(req_id)

    def pending(self) -> int:
        return sum(1 for invocation in self._invocations.values() if invocation.result is None)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pool.shutdown()
