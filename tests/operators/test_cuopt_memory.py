"""Memory bound: a 120 MB cuOpt problem streamed through zlib into an NVCF asset raises peak RSS by
less than 64 MiB.

The short version of the cuOpt asset benchmark (``benchmarks/``, ``docs/benchmarks.md``), through the
operator's own submission path (``prepare_problem`` + ``CuOptHook.submit``): reading the problem
whole, or compressing it in memory as the thin client does, would fail here. Measured in a fresh
subprocess with the peak-RSS counter (VmHWM) reset right before the submission; a 100 MiB ballast
allocated afterwards proves the probe sees memory. The problem's bulk sits in a key cuOpt does not
know, so the emulator rejects it quickly instead of solving it.
"""

from __future__ import annotations

import json
import random
import textwrap
import time

from optimization_emulator.testing.cuopt import TINY_LP
from optimization_emulator.testing.memory import MIB, run_probe

SIZE = 120 * 1000 * 1000

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow_provider.hooks.cuopt_problems import prepare_problem
    from airflow_provider.hooks.cuopt import CuOptHook
    from optimization_emulator.testing.memory import proc_status, reset_peak_rss

    hook = CuOptHook()
    function = hook.resolve_function(None, None, None)

    def submit(uri):
        with prepare_problem(problem_uri=uri) as prepared:
            invocation, asset_id = hook.submit(prepared, function, poll_seconds=1)
        hook.delete_asset_best_effort(asset_id)
        return prepared

    submit(sys.argv[1])  # warm-up on a small asset: imports, token, sessions
    base = reset_peak_rss()
    prepared = submit(sys.argv[2])
    growth = proc_status("VmHWM") - base
    ballast = bytearray(100 * 1024 * 1024)
    print(json.dumps({"raw": prepared.raw_size, "asset": prepared.asset_size, "growth": growth,
                      "probe": proc_status("VmHWM") - base}))
    """
)


def lp_with_bulk(path, size: int):
    """An LP-shaped JSON document of exactly ``size`` bytes whose bulk is random numbers as text."""
    rng = random.Random(7)
    numbers = ",".join(str(rng.randint(0, 10**9)) for _ in range(100_000)).encode() + b","
    head = json.dumps({**TINY_LP, "bulk": ""})[:-2].encode()
    left = size - len(head) - 2
    with open(path, "wb") as f:
        f.write(head)
        while left > 0:
            f.write(numbers[:left])
            left -= min(left, len(numbers))
        f.write(b'"}')
    assert path.stat().st_size == size
    return path


def test_120_mb_problem_asset_peak_rss_growth_under_64_mib(emulator, cuopt_conn, tmp_path):
    small = lp_with_bulk(tmp_path / "small.json", 400_000)  # over the 250 kB inline limit
    big = lp_with_bulk(tmp_path / "big.json", SIZE)
    emulator.reset()
    result = run_probe(SCRIPT, str(small), str(big))
    nvcf = emulator.stats()["nvcf"]
    assert result["raw"] == SIZE and nvcf["uploads"] == 2
    assert nvcf["upload_bytes"] > result["asset"] > SIZE // 4  # compressed, and sent as it was staged
    assert result["probe"] >= 90 * MIB, result  # the measurement sees the 100 MiB ballast
    print(
        f"120 MB cuOpt problem: asset {result['asset'] / 1e6:.0f} MB, peak RSS growth {result['growth'] / MIB:.1f} MiB"
    )
    assert result["growth"] < 64 * MIB, f"peak RSS grew {result['growth'] / MIB:.1f} MiB"
    deadline = time.monotonic() + 60  # leave the shared emulator idle: its solver parses the problem
    while emulator.stats()["nvcf"]["requests_pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
