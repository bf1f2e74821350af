"""cuOpt: a large problem streamed from its file through zlib into an NVCF asset, then invoked.

The problem is LP-shaped JSON whose bulk is random numeric text (what a constraint matrix looks
like on the wire), so the compression ratio and zlib's speed are those of a real LP. The bulk sits
in a key cuOpt does not know, so the emulator rejects the problem as soon as it has parsed it
(HTTP 422) instead of spending minutes solving it: the benchmark measures the client.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from benchmarks.common import MB, MIB, Services, median, probe, run_processes
from benchmarks.report import Report, Row, mib, seconds

MEMORY_GOAL = 64 * MIB


def write_problem(path: Path, size: int, seed: int = 0) -> Path:
    """A JSON document of exactly ``size`` bytes: a tiny LP plus ``padding``, random numbers as text."""
    from optimization_emulator.testing.cuopt import TINY_LP

    rng = random.Random(seed)
    block = ",".join(f"{rng.uniform(-1000, 1000):.6f}" for _ in range(4 * MIB // 11)).encode() + b","
    head = json.dumps(TINY_LP, separators=(",", ":"))[:-1].encode() + b',"padding":"'
    tail = b'"}'
    left = size - len(head) - len(tail)
    with open(path, "wb") as f:
        f.write(head)
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= min(left, len(block))
        f.write(tail)
    return path


def _wait_until_idle(svc: Services, timeout: float = 120) -> None:
    """Let the emulator's solver processes finish with the problem before the next measurement."""
    deadline = time.monotonic() + timeout
    while svc.emulator.stats()["nvcf"]["requests_pending"] and time.monotonic() < deadline:
        time.sleep(0.2)


def cuopt_asset(svc: Services, report: Report, *, size: int, repeat: int) -> None:
    src = write_problem(svc.work / "problem.json", size)
    warm = write_problem(svc.work / "problem-warm.json", 2 * MB)  # over 250 kB: the asset path
    results = []
    for _ in range(repeat):
        args = {"uri": str(src), "warmup_uri": str(warm), "pids": {"emulator": svc.pids()["emulator"]}}
        results.append(probe("cuopt_asset", args, svc.env))
        _wait_until_idle(svc)
    gzip = [run_processes(["gzip", "-1", "-c", str(src)], env=svc.env) for _ in range(repeat)]
    src.unlink()
    growth = max(r["growth"] for r in results)
    transfer = median([r["compress_s"] + r["upload_s"] for r in results])
    compress = median([r["compress_s"] for r in results])
    upload = median([r["upload_s"] for r in results])
    invoke = median([r["invoke_s"] for r in results])
    first = results[0]
    ratio = first["raw_bytes"] / first["asset_bytes"]
    report.add(
        Row(
            f"cuOpt asset {size / MB:.0f} MB",
            "prepare_problem + CuOptHook.submit",
            f"{seconds(transfer)} (median of {len(results)})",
            f"+{mib(growth)}",
            f"{size / transfer / MB:.0f} MB/s of raw problem; zlib 1: {size / compress / MB:.0f} MB/s, "
            f"ratio {ratio:.2f}:1 ({first['asset_bytes'] / MB:.0f} MB sent in {seconds(upload)}); "
            f"invoke {seconds(invoke)}",
            f"emulator {median([r['servers']['emulator'] for r in results]):.0f} %",
            "≤ +64 MiB",
            growth <= MEMORY_GOAL,
        )
    )
    floor = median([g.wall for g in gzip])
    report.add(
        Row(
            f"cuOpt asset {size / MB:.0f} MB",
            "gzip -1 of the same file (deflate level 1 in C: the compression floor)",
            f"{seconds(floor)} (median of {len(gzip)})",
            f"{mib(max(g.peak_rss for g in gzip))} (whole process)",
            f"{size / floor / MB:.0f} MB/s; the provider's compression takes {compress / floor:.2f}× as long",
        )
    )
    report.notes.append(
        "cuOpt asset: wall is compression (stream → zlib level 1 → temp file) plus the asset PUT; the "
        "invocation after it (which long-polls up to `poll_seconds=1` while the emulator parses the "
        "problem) is reported apart as *invoke*."
    )
