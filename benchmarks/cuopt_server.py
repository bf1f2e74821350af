"""Self-hosted cuOpt server: a large problem through ``CuOptSolveOperator`` (MPS-free JSON, zlib,
streamed ``POST /cuopt/request``) against ``curl --data-binary @problem.zlib`` to the same endpoint,
and a 100 MB result streamed to ``output_uri``.

The problem is the cuOpt asset benchmark's (``cuopt_asset.write_problem``: LP-shaped JSON whose bulk
is random numeric text, so zlib's ratio and speed are those of a real LP). The operator's time is
split into compression (stream → zlib level 1 → temp file, reported apart) and the POST itself,
which is what is compared with curl sending the same compressed bytes. The result case serves a
100 MB done envelope over a plain local HTTP server (``python -m http.server``, Content-Type
``application/json``): a poll reads at most 1 MiB of it, sees a finished result and streams it.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

from benchmarks.common import MB, MIB, Services, median, probe, run_processes
from benchmarks.cuopt_asset import write_problem
from benchmarks.report import Report, Row, mib, seconds

MEMORY_GOAL = 64 * MIB
TIME_GOAL = 1.15
RESULT_ID = "big-result.json"


def _zlib_copy(src: Path, dest: Path) -> Path:
    compressor = zlib.compressobj(zlib.Z_BEST_SPEED)
    with open(src, "rb") as f, open(dest, "wb") as out:
        while chunk := f.read(1024 * 1024):
            out.write(compressor.compress(chunk))
        out.write(compressor.flush())
    return dest


def _curl(svc: Services, body: Path) -> float:
    url = f"{svc.emulator.cuopt_server_url}/cuopt/request?validation_only=False&solver_logs=False"
    argv = [
        "curl", "-sS", "-o", "/dev/null", "--fail", "--data-binary", f"@{body}",
        "-H", "Content-Type: application/zlib", "-H", "Accept: application/json", "-H", "CLIENT-VERSION: custom",
        "-H", "Expect:",  # no 100-continue round trip (the provider sends none either)
        url,
    ]  # fmt: skip
    done = run_processes(argv, env=svc.env)
    if done.returncode:
        raise RuntimeError(f"curl failed: {done.stderr}")
    return done.wall


def _wait_until_idle(svc: Services, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = svc.emulator.stats()["cuopt_server"]
        if not stats["jobs_queued"] and not stats["jobs_running"]:
            return
        time.sleep(0.2)


def cuopt_server_submit(svc: Services, report: Report, *, size: int, repeat: int) -> None:
    src = write_problem(svc.work / "problem.json", size)
    warm = write_problem(svc.work / "problem-warm.json", 2 * MB)
    body = _zlib_copy(src, svc.work / "problem.zlib")
    results, curls = [], []
    for _ in range(repeat):
        args = {"uri": str(src), "warmup_uri": str(warm), "pids": {"emulator": svc.pids()["emulator"]}}
        results.append(probe("cuopt_server_submit", args, svc.env))
        _wait_until_idle(svc)
        curls.append(_curl(svc, body))
        _wait_until_idle(svc)
    growth = max(r["growth"] for r in results)
    post = median([r["post_s"] for r in results])
    compress = median([r["compress_s"] for r in results])
    curl = median(curls)
    sent = results[0]["sent_bytes"]
    ratio = post / curl
    report.add(
        Row(
            f"cuOpt server {size / MB:.0f} MB",
            "CuOptSolveOperator (cuopt_server) submission",
            f"POST {seconds(post)} (median of {len(results)})",
            f"+{mib(growth)}",
            f"{sent / MB:.0f} MB zlib sent; {ratio:.2f}× curl ({seconds(curl)}); compression apart: "
            f"{seconds(compress)} ({size / compress / MB:.0f} MB/s)",
            f"emulator {median([r['servers']['emulator'] for r in results]):.0f} %",
            f"≤ +64 MiB, ≤ {TIME_GOAL}× curl",
            growth <= MEMORY_GOAL and ratio <= TIME_GOAL,
        )
    )
    report.notes.append(
        "cuOpt server: *POST* is the operator's `POST /cuopt/request` of the staged zlib file (exact "
        "Content-Length, streamed), compared with `curl --data-binary @problem.zlib` of the same bytes to "
        "the same endpoint (both include the emulator's answer); compression (zlib level 1 to a temp "
        "file) is reported apart."
    )
    for path in (src, warm, body):
        path.unlink(missing_ok=True)


def _write_result(path: Path, size: int) -> Path:
    """A done envelope of about ``size`` bytes: an LP answer with a long primal solution."""
    rng = random.Random(1)
    head = b'{"response":{"solver_response":{"status":"Optimal","solution":{"primal_objective":1.0,"primal_solution":['
    tail = b'0.0]}},"total_solve_time":1.0},"reqId":"' + RESULT_ID.encode() + b'"}'
    block = ",".join(f"{rng.uniform(0, 1000):.6f}" for _ in range(100_000)).encode() + b","
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head)
        written = len(head) + len(tail)
        while written < size:
            f.write(block)
            written += len(block)
        f.write(tail)
    return path


def cuopt_server_result(svc: Services, report: Report, *, size: int, repeat: int) -> None:
    root = svc.work / "result-server"
    _write_result(root / "cuopt" / "solution" / RESULT_ID, size)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        args = {"port": port, "req_id": RESULT_ID, "out": str(svc.work / "stored"), "pids": {}}
        results = [probe("cuopt_server_result", args, svc.env) for _ in range(repeat)]
    finally:
        server.terminate()
        server.wait(10)
    growth = max(r["growth"] for r in results)
    wall = median([r["wall"] for r in results])
    report.add(
        Row(
            f"cuOpt server result {size / MB:.0f} MB",
            "CuOptServerHook poll + streamed store to output_uri",
            f"{seconds(wall)} (median of {len(results)})",
            f"+{mib(growth)}",
            f"{size / wall / MB:.0f} MB/s; poll read ≤ 1 MiB, then streamed and parsed (ijson)",
            "",
            "≤ +64 MiB",
            growth <= MEMORY_GOAL and all(r["ok"] for r in results),
        )
    )
