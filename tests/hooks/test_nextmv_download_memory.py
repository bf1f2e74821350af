"""Memory bound: an 80 MB output streamed to a local file raises peak RSS by less than 64 MiB.

The short version of the download benchmark (``benchmarks/``, ``docs/benchmarks.md``): a
``download_output`` that read the payload whole would grow the worker by at least its size and fail
here. Measured in a fresh subprocess, with the peak-RSS counter (VmHWM) reset through
/proc/self/clear_refs right before the download; a 100 MiB ballast allocated afterwards proves the
probe sees memory.
"""

from __future__ import annotations

import textwrap
import time

from airflow_provider.hooks.nextmv import NextmvHook
from optimization_emulator.testing.memory import MIB, run_probe

SIZE = 80 * 1000 * 1000

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow_provider.hooks.nextmv import NextmvHook
    from optimization_emulator.testing.memory import proc_status, reset_peak_rss

    small_run, big_run, target = sys.argv[1:4]
    hook = NextmvHook()
    hook.download_output("echo", small_run, target + ".warm")  # imports, sessions, writers
    base = reset_peak_rss()
    paths = hook.download_output("echo", big_run, target)
    growth = proc_status("VmHWM") - base
    ballast = bytearray(100 * 1024 * 1024)
    print(json.dumps({"paths": paths, "growth": growth, "probe": proc_status("VmHWM") - base}))
    """
)


def finished_run(hook: NextmvHook, **source) -> str:
    run_id = hook.submit_run("echo", **source)
    event = hook.wait_for_run(
        "echo", run_id, deadline=time.time() + 120, poll_interval=0.1, max_poll_interval=0.5
    )
    assert event.status.value == "succeeded", event.message
    return run_id


def test_80_mb_download_peak_rss_growth_under_64_mib(emulator, nextmv_conn, json_file, tmp_path):
    hook = NextmvHook(nextmv_conn)
    big_run = finished_run(hook, input_uri=str(json_file(SIZE, "big.json")))  # echo: output = input
    small_run = finished_run(hook, input={"small": True})
    target = tmp_path / "out" / "solution.json"
    emulator.reset()
    result = run_probe(SCRIPT, small_run, big_run, str(target))
    assert result["paths"] == [str(target)] and target.stat().st_size == SIZE
    assert emulator.stats()["nextmv"]["downloads"] == 1  # through the presigned URL, not inline
    assert result["probe"] >= 90 * MIB, result  # the measurement sees the 100 MiB ballast
    print(f"80 MB download: peak RSS growth {result['growth'] / MIB:.1f} MiB")
    assert result["growth"] < 64 * MIB, f"peak RSS grew {result['growth'] / MIB:.1f} MiB"
