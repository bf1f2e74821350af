"""A triggerer's load: a thousand ``NextmvRunTrigger``s on one event loop, runs ending over a minute.

The parent submits N runs of the emulator's synthetic ``timer`` app (no process per run), timed to
finish at random moments spread over ``--trigger-spread`` seconds, then starts a fresh interpreter
(``python -m benchmarks.triggerer CONFIG``) that does what Airflow's ``TriggerRunner`` does: creates
the triggers one by one on one loop (yielding between them) and iterates each one's ``run()`` until
its event. That child measures its own CPU, RSS, event-loop stalls (a task sleeping 10 ms in a loop
and recording the overshoot) and the TCP connections it opens; the parent watches the emulator's
side (CPU, connections held) and afterwards computes each run's detection lag: from the moment the
emulator finished the run (``created_at + duration`` of its metadata) to the moment its trigger
yielded the event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import (
    REPO,
    ConnectionWatch,
    Services,
    cpu_meter,
    median,
    percentile,
    process_cpu,
)
from benchmarks.report import Report, Row, mib
from optimization_emulator.testing.memory import proc_status, reset_peak_rss

STALL_GOAL = 0.050
CPU_GOAL = 25.0
MONITOR_INTERVAL = 0.010


# -- parent -----------------------------------------------------------------------------------------
def _submit_runs(svc: Services, finish_at: list[float]) -> list[str]:
    url = f"{svc.emulator.url}/v1/applications/timer/runs"
    headers = {"Authorization": f"Bearer {svc.emulator.api_key}"}
    session = requests.Session()

    def submit(end: float) -> str:
        body = {"input": {"seconds": round(max(0.0, end - time.time()), 3)}}
        response = session.post(url, json=body, headers=headers, timeout=30)
        response.raise_for_status()
        return response.json()["run_id"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(submit, finish_at))


def _finished_at(svc: Services, run_ids: list[str]) -> dict[str, float]:
    """When the emulator ended each run (epoch seconds), from its metadata."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {svc.emulator.api_key}"}

    def ended(run_id: str) -> tuple[str, float]:
        url = f"{svc.emulator.url}/v1/applications/timer/runs/{run_id}/metadata"
        meta = session.get(url, headers=headers, timeout=30).json()["metadata"]
        created = dt.datetime.fromisoformat(meta["created_at"]).timestamp()
        return run_id, created + meta["duration"] / 1000

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(ended, run_ids))


def triggerer(
    svc: Services,
    report: Report,
    *,
    runs: int,
    spread: float,
    poll_interval: float,
    max_poll_interval: float,
    gc_freeze: bool = False,
) -> None:
    lead = 8.0 + runs / 250  # submission and the child's start-up (imports) happen before the first end
    first_end = time.time() + lead
    finish_at = sorted(first_end + random.uniform(0, spread) for _ in range(runs))
    run_ids = _submit_runs(svc, finish_at)
    config = {
        "runs": run_ids,
        "poll_interval": poll_interval,
        "max_poll_interval": max_poll_interval,
        "end_time": time.time() + lead + spread + 600,
        "gc_freeze": gc_freeze,
    }
    config_path = svc.work / "triggerer.json"
    config_path.write_text(json.dumps(config))
    log_path = svc.work / "triggerer.log"
    polls_before = svc.emulator.stats()["nextmv"]["status_polls"]
    port = int(svc.emulator.url.rsplit(":", 1)[1])
    with open(log_path, "w") as log, ConnectionWatch(port) as conns, cpu_meter(svc.pids()) as cpu:
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.triggerer", str(config_path)],
            check=False,
            env=svc.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            timeout=lead + spread + 900,
        )
    if child.returncode != 0:
        raise RuntimeError(f"triggerer child failed: {log_path.read_text()[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    polls = svc.emulator.stats()["nextmv"]["status_polls"] - polls_before
    ended = _finished_at(svc, run_ids)
    events = result["events"]
    lags = [events[r][0] - ended[r] for r in run_ids if r in events]
    succeeded = sum(1 for r in run_ids if events.get(r, (0, ""))[1] == "succeeded")
    stall, cpu_percent = result["stall_max"], result["cpu_percent"]
    ok = succeeded == runs and stall <= STALL_GOAL and cpu_percent <= CPU_GOAL
    label = f"poll {poll_interval:g} s → max {max_poll_interval:g} s"
    report.add(
        Row(
            f"Triggerer: {runs:,} NextmvRunTriggers on one loop",
            label
            + (
                " — with `[optimization_provider] triggerer_gc_freeze = True`"
                if gc_freeze
                else " — Airflow defaults"
            ),
            f"{result['wall']:.0f} s",
            f"{mib(result['rss_start'])} → peak {mib(result['rss_peak'])}",
            f"{succeeded:,}/{runs:,} succeeded events; detection lag p50 {median(lags):.2f} s, "
            f"p99 {percentile(lags, 99):.2f} s, max {max(lags):.2f} s; "
            f"longest stall {stall * 1000:.0f} ms ({result['stall_max_gc'] * 1000:.0f} ms of it in a full GC), "
            f"longest net of GC {result['stall_net_max'] * 1000:.0f} ms, most loop CPU in one stall "
            f"{result['busy_max'] * 1000:.0f} ms, p99 {result['stall_p99'] * 1000:.1f} ms; "
            f"{result['gc_full']} full GCs (longest {result['gc_full_max'] * 1000:.0f} ms); "
            f"CPU {cpu_percent:.1f} % of a core; {polls:,} polls ({polls / result['wall']:.0f}/s); "
            f"{result['connections']} TCP connections opened, at most {conns.most} open at the emulator",
            f"emulator {cpu['emulator']:.0f} %",
            f"{runs:,}/{runs:,}; stall ≤ {STALL_GOAL * 1000:.0f} ms; CPU ≤ {CPU_GOAL:.0f} %",
            ok,
        )
    )
    which = "with triggerer_gc_freeze" if gc_freeze else "Airflow defaults"
    if gc_freeze:
        report.notes.append(
            "Triggerer with `[optimization_provider] triggerer_gc_freeze = True` (opt-in, "
            "`airflow_provider/utils/triggerer_gc.py`): the first trigger calls `gc.freeze()` once, as "
            "Airflow's dag processor does after start-up, so full collections stop walking Airflow's own "
            "~180,000 start-up objects and walk only the triggers' live state."
        )
        report.notes.append(f"Triggerer stalls ({which}), longest first: {_top(result)}.")
        return
    report.notes.append(
        "Triggerer stalls: *longest stall* is the largest overshoot of a 10 ms sleep on the triggers' "
        "loop, whatever the cause; *net of GC* subtracts the time CPython's collector ran inside it "
        "(a full collection walks every tracked object of the process, Airflow's included); what "
        "remains is the loop's own work, or the process waiting for a CPU on a busy machine (then "
        "the main thread's CPU time during the stall is small)."
    )
    report.notes.append(
        f"Triggerer stalls ({which}), longest first: {_top(result)}. The process holds "
        f"{result['heap_objects']:,} objects the collector tracks (mostly Airflow's own modules); a full "
        "collection walks all of them."
    )
    report.settings.append(
        f"Triggerer: {runs:,} `timer` runs ending uniformly at random over {spread:g} s; "
        f"`NextmvRunTrigger(poll_interval={poll_interval:g}, max_poll_interval={max_poll_interval:g})` "
        "(the delay grows ×1.5 per poll with ±10 % jitter up to the maximum); the emulator with "
        "`--max-parallel-runs 2000`."
    )


def _top(result: dict[str, Any]) -> str:
    return "; ".join(
        f"{s * 1000:.0f} ms at {at:.1f} s (GC {g * 1000:.0f} ms, main-thread CPU {c * 1000:.0f} ms)"
        for s, g, c, at in result["top_stalls"][:5]
    )


# -- child: the triggerer process -------------------------------------------------------------------
class LoopWatch:
    """Event-loop stalls (a task sleeping 10 ms, recording the overshoot and the main thread's CPU
    time during it) and the garbage collector's pauses, which stop the loop too."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.stalls: list[tuple[float, float, float]] = []  # (start, end, main-thread CPU) past 10 ms
        self.overshoots: list[float] = []
        self.gc: list[tuple[float, float, int]] = []  # (start, end, generation)
        self._gc_start = 0.0
        self.done = asyncio.Event()

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter() - self.t0
        if phase == "start":
            self._gc_start = now
        else:
            self.gc.append((self._gc_start, now, info["generation"]))

    async def monitor(self) -> None:
        while not self.done.is_set():
            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(MONITOR_INTERVAL)
            ended = time.perf_counter()
            over = ended - started - MONITOR_INTERVAL
            self.overshoots.append(over)
            if over > 0.005:
                self.stalls.append((started - self.t0, ended - self.t0, time.thread_time() - cpu))

    def _gc_within(self, start: float, end: float) -> float:
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b, _ in self.gc)

    def summary(self) -> dict[str, Any]:
        """Longest stall; its GC share; longest stall net of GC pauses; the GC pauses; the top stalls."""
        rows = [
            (end - start - MONITOR_INTERVAL, self._gc_within(start, end), cpu, start)
            for start, end, cpu in self.stalls
        ]
        longest = max(rows, default=(0.0, 0.0, 0.0, 0.0))
        full = [b - a for a, b, g in self.gc if g == 2]
        return {
            "stall_max": max(self.overshoots, default=0.0),
            "stall_max_gc": longest[1],
            "stall_net_max": max((r[0] - r[1] for r in rows), default=0.0),
            # the loop's own work inside a stall: main-thread CPU time, less the collector's share
            "busy_max": max((r[2] - r[1] for r in rows), default=0.0),
            "stall_p99": percentile(self.overshoots, 99),
            "gc_full": len(full),
            "gc_full_max": max(full, default=0.0),
            "top_stalls": sorted(rows, reverse=True)[:8],
        }


async def _child(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider.hooks.nextmv_async import NextmvAsyncHook
    from airflow_provider.triggers.nextmv import NextmvRunTrigger

    # A triggerer that has been up for a while has imported Airflow's connection machinery already:
    # load it once here, so that the measurement does not start with a one-time import on the loop.
    await NextmvAsyncHook().settings()

    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.040  # reported in asyncio's debug mode only
    opened = 0
    create_connection = loop.create_connection

    async def counting_create_connection(*args: Any, **kwargs: Any) -> Any:
        nonlocal opened
        opened += 1
        return await create_connection(*args, **kwargs)

    loop.create_connection = counting_create_connection  # type: ignore[method-assign]
    events: dict[str, tuple[float, str]] = {}

    async def run_trigger(trigger: NextmvRunTrigger) -> None:  # as TriggerRunner.run_trigger
        async for event in trigger.run():
            events[trigger.run_id] = (time.time(), event.payload["status"])

    if config.get("gc_freeze"):  # the provider's opt-in setting: gc.freeze() when the first trigger starts
        os.environ["AIRFLOW__OPTIMIZATION_PROVIDER__TRIGGERER_GC_FREEZE"] = "True"
    watch = LoopWatch()
    gc.callbacks.append(watch.on_gc)
    rss_start, cpu_start, started = reset_peak_rss(), process_cpu(), time.perf_counter()
    monitor = asyncio.create_task(watch.monitor())
    tasks = []
    for run_id in config["runs"]:  # as TriggerRunner.create_triggers: one at a time, yielding between
        await asyncio.sleep(0)
        trigger = NextmvRunTrigger(
            app_id="timer",
            run_id=run_id,
            end_time=config["end_time"],
            poll_interval=config["poll_interval"],
            max_poll_interval=config["max_poll_interval"],
        )
        tasks.append(asyncio.create_task(run_trigger(trigger)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    cpu = process_cpu() - cpu_start
    watch.done.set()
    await monitor
    gc.callbacks.remove(watch.on_gc)
    return {
        "events": events,
        "wall": wall,
        "cpu_percent": 100 * cpu / wall,
        "rss_start": rss_start,
        "rss_peak": proc_status("VmHWM"),
        "connections": opened,
        "heap_objects": len(gc.get_objects()),
        **watch.summary(),
    }


if __name__ == "__main__":
    import os

    config = json.loads(Path(sys.argv[1]).read_text())
    if os.environ.get("PYTHONASYNCIODEBUG"):  # diagnosis: name the callbacks that block the loop
        import logging

        asyncio_log = logging.getLogger("asyncio")
        asyncio_log.addHandler(logging.StreamHandler())
        asyncio_log.setLevel(logging.WARNING)
        asyncio_log.propagate = False
    if profile := os.environ.get("BENCH_PROFILE"):  # a cProfile of the whole child, for diagnosis
        import cProfile

        with cProfile.Profile() as profiler:
            answer = asyncio.run(_child(config))
        profiler.dump_stats(profile)
    else:
        answer = asyncio.run(_child(config))
    print(json.dumps(answer))
