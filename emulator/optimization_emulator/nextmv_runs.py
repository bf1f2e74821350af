"""Nextmv runs: the run record, and the manager that queues, executes and cancels them.

A run is ``queued`` (at least ``--queue-delay`` seconds, and until one of ``--max-parallel-runs``
slots is free), then ``running`` while its app command executes, then ``succeeded``, ``failed`` or
``canceled``. Each run executes in a fresh working directory under the data dir, which is removed
when it ends; its input, output and log stay under ``nextmv/runs/<run_id>/`` until the run is
deleted. Built-in synthetic apps (``timer``) run inside the emulator instead, without a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from optimization_emulator import app_process, archives
from optimization_emulator.config import ARCHIVE_FORMATS, AppSpec
from optimization_emulator.limits import Limits

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})
_SUFFIX = {"json": ".json", "text": ".txt", "csv-archive": ".tar.gz", "multi-file": ".tar.gz"}
CONTENT_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "csv-archive": "application/gzip",
    "multi-file": "application/gzip",
}


def payload_name(kind: str, fmt: str) -> str:
    """File name of a run's ``input`` or ``output`` in format ``fmt``: ``output.tar.gz``, ..."""
    return kind + _SUFFIX[fmt]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class Run:
    id: str
    app: AppSpec
    instance_id: str
    directory: Path  # nextmv/runs/<id>: input, output, log
    input_format: str
    output_format: str
    input_path: Path
    input_size: int
    name: str = ""
    description: str = ""
    options: dict[str, str] = dataclasses.field(default_factory=dict)
    created_at: dt.datetime = dataclasses.field(default_factory=utc_now)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    status: str = "queued"
    error: str = ""
    output_path: Path | None = None  # set only when the run produced a usable output
    output_size: int = 0
    stdout_tail: str = ""
    stderr_tail: str = ""
    #: What the app reported under its output's top-level ``statistics`` / ``metrics`` keys (json
    #: outputs), which Nextmv shows in the run's metadata; None when absent or too large.
    statistics: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def payload(self, kind: str) -> tuple[Path | None, str, int]:
        """``(path, format, size)`` of the run's ``"input"`` or ``"output"`` (path None: no output)."""
        if kind == "input":
            return self.input_path, self.input_format, self.input_size
        return self.output_path, self.output_format, self.output_size

    @property
    def log_path(self) -> Path:
        return self.directory / "run.log"

    @property
    def duration_ms(self) -> float:
        """Time from creation to the end of the run (so far, while it is not final)."""
        end = self.finished_at or utc_now()
        return round((end - self.created_at).total_seconds() * 1000, 3)

    @property
    def execution_ms(self) -> float:
        if self.started_at is None:
            return 0.0
        return round(((self.finished_at or utc_now()) - self.started_at).total_seconds() * 1000, 3)

    def finish(self, status: str, error: str = "") -> None:
        if not self.is_final:
            self.status, self.error, self.finished_at = status, error, utc_now()


def new_run_id(instance_id: str, taken: Callable[[str], bool]) -> str:
    """An id shaped like Nextmv's (``<instance>-<9 random characters>``, e.g. ``latest-a_USaanxSR``)."""
    while True:
        run_id = f"{instance_id}-{secrets.token_urlsafe(8)[:9]}"
        if not taken(run_id):
            return run_id


class RunManager:
    """Owns the runs of one emulator: their tasks, the parallelism limit and cancellation."""

    def __init__(
        self,
        *,
        work_root: Path,
        limits: Limits,
        max_parallel: int,
        queue_delay: float,
        on_final: Callable[[Run], None] = lambda run: None,
    ) -> None:
        self.runs: dict[str, Run] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_parallel)
        self._work_root = work_root
        self._limits = limits
        self._queue_delay = queue_delay
        self._on_final = on_final

    def submit(self, run: Run) -> None:
        self.runs[run.id] = run
        self._tasks[run.id] = asyncio.create_task(self._lifecycle(run), name=f"run {run.id}")

    async def cancel(self, run: Run) -> None:
        """Moves a non-final run to ``canceled``, killing its app if it is running."""
        task = self._tasks.get(run.id)
        if run.is_final or task is None:
            return
        run.finish("canceled", "run canceled by user")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def delete(self, run: Run) -> None:
        await self.cancel(run)
        self.runs.pop(run.id, None)
        self._tasks.pop(run.id, None)
        await asyncio.to_thread(shutil.rmtree, run.directory, True)

    async def shutdown(self) -> None:
        """Cancels every unfinished run and waits for their processes to be gone."""
        pending = [task for task in self._tasks.values() if not task.done()]
        for run in self.runs.values():
            run.finish("canceled", "the emulator shut down")
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _lifecycle(self, run: Run) -> None:
        try:
            await asyncio.sleep(self._queue_delay)
            async with self._slots:
                if run.is_final:
                    return
                run.status, run.started_at = "running", utc_now()
                status, error = await self._execute(run)
            run.finish(status, error)
        except asyncio.CancelledError:
            run.finish("canceled", "run canceled")
            raise
        except Exception as exc:  # a bug here must fail the run, not leave it running forever
            logger.exception("run %s crashed the emulator", run.id)
            run.finish("failed", f"emulator error: {exc}")
        finally:
            if run.is_final:
                self._ensure_archive_output(run)
                self._on_final(run)

    @staticmethod
    def _ensure_archive_output(run: Run) -> None:
        """Multi-file runs end with an output archive, empty if the app never got to write one."""
        if run.output_path is None and run.output_format in ARCHIVE_FORMATS:
            output_file = run.directory / payload_name("output", run.output_format)
            archives.pack_tar_gz(run.directory / "no-outputs", output_file)
            run.output_path, run.output_size = output_file, output_file.stat().st_size

    async def _execute(self, run: Run) -> tuple[str, str]:
        """Runs the app in a fresh working directory; returns the final ``(status, error)``."""
        if run.app.builtin:
            return await BUILTIN_RUNNERS[run.app.builtin](run)
        workdir = self._work_root / run.id
        workdir.mkdir(parents=True)
        try:
            return await self._execute_in(run, workdir)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _execute_in(self, run: Run, workdir: Path) -> tuple[str, str]:
        env = dict(os.environ)
        env.update(
            NEXTMV_RUN_ID=run.id,
            NEXTMV_APP_ID=run.app.id,
            NEXTMV_INSTANCE_ID=run.instance_id,
            NEXTMV_INPUT_FORMAT=run.input_format,
            NEXTMV_OUTPUT_FORMAT=run.output_format,
            NEXTMV_OPTIONS=json.dumps(run.options),
        )
        stdin: Path | None = run.input_path
        if run.input_format in ARCHIVE_FORMATS:
            try:
                await asyncio.to_thread(
                    archives.extract_tar_gz, run.input_path, workdir / "inputs", self._limits.extracted_bytes
                )
            except archives.ArchiveError as exc:
                return "failed", f"invalid {run.input_format} input: {exc}"
            env["NEXTMV_INPUT_DIR"], stdin = "./inputs", None
        archive_output = run.output_format in ARCHIVE_FORMATS
        output_file = run.directory / payload_name("output", run.output_format)
        stdout_file = run.directory / "stdout.txt" if archive_output else output_file
        if archive_output:
            env["NEXTMV_OUTPUT_DIR"] = "./outputs"
            (workdir / "outputs").mkdir()

        exit_code = await app_process.run_shell(
            run.app.command, cwd=workdir, env=env, stdin=stdin, stdout=stdout_file, stderr=run.log_path
        )
        run.stdout_tail = app_process.tail(stdout_file)
        run.stderr_tail = app_process.tail(run.log_path)
        if archive_output:
            await asyncio.to_thread(archives.pack_tar_gz, workdir / "outputs", output_file)
        if exit_code != 0:
            if archive_output and not await self._output_problem(run.output_format, output_file):
                # What a failed multi-file app left in outputs/ stays downloadable: the official SDK
                # fetches an archive for every finished multi-file run (real behaviour unknown).
                run.output_path, run.output_size = output_file, output_file.stat().st_size
            return "failed", _exit_error(exit_code, run.stderr_tail)
        problem = await self._output_problem(run.output_format, output_file, run)
        if problem:
            return "failed", problem
        run.output_path, run.output_size = output_file, output_file.stat().st_size
        return "succeeded", ""

    async def _output_problem(self, output_format: str, output_file: Path, run: Run | None = None) -> str:
        """Why the app's output cannot be the run's output, or ''. A json output's ``statistics`` and
        ``metrics`` are copied to ``run`` on the way (what the run's metadata reports)."""
        size = output_file.stat().st_size
        limit = self._limits.download_bytes
        if size > limit:
            # Nextmv documents a 100 MB download limit; what its API does with a bigger output is
            # unknown. Failing the run says clearly why the output cannot be had.
            return f"output is {size:,} bytes and exceeds the {limit:,}-byte (100 MB) download limit"
        if output_format == "json":
            problem, reported = await asyncio.to_thread(_json_problem, output_file)
            if run is not None:
                run.statistics, run.metrics = reported.get("statistics"), reported.get("metrics")
            if problem:
                return f"app output is not valid JSON (output format json): {problem}"
        return ""


def _exit_error(exit_code: int, stderr_tail: str) -> str:
    what = f"killed by signal {-exit_code}" if exit_code < 0 else f"exited with status {exit_code}"
    return f"app {what}: {stderr_tail}" if stderr_tail else f"app {what} (no output on stderr)"


#: Largest ``statistics`` / ``metrics`` object (compact JSON) copied into a run's metadata.
MAX_REPORTED_BYTES = 256 * 1024


def _json_problem(path: Path) -> tuple[str, dict[str, Any]]:
    """('' when ``path`` holds one JSON document, else what is wrong with it; the document's
    top-level ``statistics`` and ``metrics`` objects, when small enough)."""
    try:
        with path.open("rb") as handle:
            document = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        return ("empty stdout" if path.stat().st_size == 0 else str(exc)), {}
    reported: dict[str, Any] = {}
    if isinstance(document, dict):
        for key in ("statistics", "metrics"):
            value = document.get(key)
            if (
                isinstance(value, dict)
                and len(json.dumps(value, separators=(",", ":"))) <= MAX_REPORTED_BYTES
            ):
                reported[key] = value
    return "", reported


# -- built-in synthetic apps: run by the emulator itself, no process, no working directory ----------

#: Largest input the timer reads (a bigger one is accepted unread: the timer then also serves as a
#: cheap sink for upload tests).
TIMER_MAX_INPUT_BYTES = 1024 * 1024
#: Longest wait a timer run accepts.
TIMER_MAX_SECONDS = 7 * 24 * 3600.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class _TimerError(ValueError):
    pass


def _timer_settings(run: Run) -> tuple[float, str]:
    """``(seconds, failure message)`` of a timer run: option ``duration`` ("37.5", "37.5s", "500ms",
    "2m") wins over the input's ``seconds``; the input's ``fail`` makes the run fail after the wait."""
    spec: dict = {}
    if run.input_format == "json" and run.input_size <= TIMER_MAX_INPUT_BYTES:
        try:
            spec = json.loads(run.input_path.read_bytes() or b"{}")
        except (OSError, ValueError) as exc:
            raise _TimerError(f"timer input is not JSON: {exc}") from None
        if not isinstance(spec, dict):
            raise _TimerError('timer input must be a JSON object such as {"seconds": 37.5}')
    if "duration" in run.options:
        match = _DURATION.match(run.options["duration"])
        if not match:
            raise _TimerError(
                f"option duration={run.options['duration']!r}: use '37.5', '37.5s', '500ms' or '2m'"
            )
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        seconds = spec.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise _TimerError(f"timer input 'seconds' must be a number, got {seconds!r}")
    if not 0 <= seconds <= TIMER_MAX_SECONDS:
        raise _TimerError(f"timer seconds must be between 0 and {TIMER_MAX_SECONDS:g}, got {seconds!r}")
    return float(seconds), str(spec.get("fail") or "")


async def _run_timer(run: Run) -> tuple[str, str]:
    """The ``timer`` app: waits, then succeeds with ``{"status": "ok", "seconds": S}`` (or fails with
    the input's ``fail`` message). Cancelling the run cancels the wait."""
    try:
        seconds, failure = _timer_settings(run)
    except _TimerError as exc:
        run.log_path.write_text(f"error: {exc}\n", encoding="utf-8")
        return "failed", str(exc)
    run.log_path.write_text(f"timer: waiting {seconds:g} s\n", encoding="utf-8")
    await asyncio.sleep(seconds)
    if failure:
        run.stderr_tail = failure
        return "failed", failure
    if run.output_format not in ARCHIVE_FORMATS:
        output_file = run.directory / payload_name("output", run.output_format)
        output_file.write_bytes(json.dumps({"status": "ok", "seconds": seconds}).encode())
        run.output_path, run.output_size = output_file, output_file.stat().st_size
    return "succeeded", ""


#: Synthetic apps by ``AppSpec.builtin``.
BUILTIN_RUNNERS: dict[str, Callable[[Run], Awaitable[tuple[str, str]]]] = {"timer": _run_timer}
