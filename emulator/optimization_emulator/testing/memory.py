"""Peak-memory probes for the memory-bound tests and the benchmarks (Linux ``/proc``).

Measure in a fresh interpreter: warm up (imports, sessions), reset the peak-RSS counter with
:func:`reset_peak_rss` (``/proc/self/clear_refs`` ← 5 sets VmHWM to the current RSS), do the work,
then ``proc_status("VmHWM") - base`` is the growth the work caused. :func:`run_probe` runs such a
script with ``python -c`` and returns the JSON it prints last. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def proc_status(field: str, pid: int | str = "self") -> int:
    """A memory field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``) in bytes; 0 once the process is gone."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> int:
    """Set this process's peak-RSS counter (VmHWM) to its current RSS; returns that RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return proc_status("VmRSS")


def run_probe(
    script: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 300,
) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter (this process's environment unless ``env``); the JSON
    object it printed last."""
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=dict(os.environ if env is None else env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise AssertionError(f"probe exited with {out.returncode}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
