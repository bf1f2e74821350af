"""Running an app command: ``/bin/sh -c COMMAND`` with files for stdin, stdout and stderr.

The process gets its own session (process group) so that cancelling a run stops everything the
command started (a shell pipeline, a solver's helpers), not only the shell. stdout and stderr go
straight to files, so outputs of any size never pass through the emulator's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path

#: How long a cancelled app gets between SIGTERM and SIGKILL.
TERMINATE_GRACE_SECONDS = 1.0


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_shell(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: Path | None,
    stdout: Path,
    stderr: Path,
) -> int:
    """Runs ``command`` to completion and returns its exit status (negative: killed by a signal).

    If the awaiting task is cancelled, the whole process group gets SIGTERM, then SIGKILL after
    :data:`TERMINATE_GRACE_SECONDS`, and the cancellation propagates once the process is gone.
    """
    with (
        open(stdin or os.devnull, "rb") as stdin_file,
        open(stdout, "wb") as stdout_file,
        open(stderr, "wb") as stderr_file,
    ):
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=cwd,
            env=dict(env),
            stdin=stdin_file,
            stdout=stdout_file,
            stderr=stderr_file,
            start_new_session=True,
        )
    try:
        return await process.wait()
    except asyncio.CancelledError:
        try:
            _signal_group(process.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), TERMINATE_GRACE_SECONDS)
        finally:
            _signal_group(process.pid, signal.SIGKILL)  # also stops children that outlived the shell
        await process.wait()
        raise


def tail(path: Path, max_bytes: int = 4096, max_lines: int | None = 20) -> str:
    """The last lines of a text file (at most ``max_bytes`` bytes; all lines for ``max_lines=None``),
    '' when it does not exist."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first line was cut
    return "\n".join(lines[-max_lines:] if max_lines else lines).strip()
