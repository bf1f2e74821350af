"""Memory bound on a self-hosted cuOpt server: a 120 MB problem submitted through
``CuOptSolveOperator`` (zlib-staged, streamed ``POST /cuopt/request``) and a result larger than the
poll cap streamed to ``output_uri`` each raise peak RSS by less than 64 MiB.

The short version of ``benchmarks/cuopt_server.py``. Measured in a fresh subprocess with the peak-RSS
counter (VmHWM) reset right before the work; a 100 MiB ballast allocated afterwards proves the probe
sees memory.
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
    from airflow_provider.operators.cuopt import CuOptSolveOperator
    from optimization_emulator.testing.memory import proc_status, reset_peak_rss

    class TI:
        def xcom_push(self, key, value):
            pass

    def submit(uri):
        op = CuOptSolveOperator(task_id="m", problem_uri=uri, output_uri=sys.argv[3], wait_for_completion=False,
                                cuopt_conn_id=sys.argv[4])
        return op.execute({"ti": TI()})

    submit(sys.argv[1])  # warm-up: imports, the session, the zlib path
    base = reset_peak_rss()
    req_id = submit(sys.argv[2])
    growth = proc_status("VmHWM") - base
    ballast = bytearray(100 * 1024 * 1024)
    print(json.dumps({"req_id": req_id, "growth": growth, "probe": proc_status("VmHWM") - base}))
    """
)


def padded_lp(path, size: int):
    """The tiny LP plus a ``padding`` string of random digits, ``size`` bytes in all (zlib ~2.3:1)."""
    digits = "".join(random.Random(3).choices("0123456789,", k=1 << 20)).encode()
    head = json.dumps({**TINY_LP, "padding": ""})[:-2].encode()
    left = size - len(head) - 2
    with open(path, "wb") as f:
        f.write(head)
        while left > 0:
            f.write(digits[: min(left, len(digits))])
            left -= min(left, len(digits))
        f.write(b'"}')
    return path


def test_120_mb_problem_through_the_operator_peak_rss_growth_under_64_mib(
    emulator, cuopt_server_conn, tmp_path
):
    small = padded_lp(tmp_path / "small.json", 400_000)  # over 250 kB: the zlib path
    big = padded_lp(tmp_path / "big.json", SIZE)
    result = run_probe(SCRIPT, str(small), str(big), str(tmp_path) + "/", cuopt_server_conn)
    posts = [r for r in emulator.requests_log() if r["method"] == "POST" and r["path"] == "/cuopt/request"]
    assert len(posts) == 2 and SIZE // 4 < posts[1]["content_length"] < SIZE  # compressed, one body
    assert result["probe"] >= 90 * MIB, result  # the measurement sees the 100 MiB ballast
    print(f"120 MB problem to the cuOpt server: peak RSS growth {result['growth'] / MIB:.1f} MiB")
    assert result["growth"] < 64 * MIB, f"peak RSS grew {result['growth'] / MIB:.1f} MiB"
    deadline = time.monotonic() + 120  # leave the shared emulator idle: it parses the problem
    while time.monotonic() < deadline:
        stats = emulator.stats()["cuopt_server"]
        if not stats["jobs_queued"] and not stats["jobs_running"]:
            break
        time.sleep(0.2)
