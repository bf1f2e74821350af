"""Memory bound: a 200 MB upload through the operator raises peak RSS by less than 64 MiB.

Measured in a fresh subprocess: the peak-RSS counter (VmHWM) is reset through
/proc/self/clear_refs right before the upload, so imports and warm-up do not count. The script
also proves the probe is sensitive by allocating 100 MB afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

MIB = 1024 * 1024

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow_provider.operators.nextmv import NextmvRunOperator

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(field)

    class TI:
        def xcom_push(self, key, value):
            pass

    ctx = {"ti": TI()}
    # warm-up: sessions, TLS-free connection pool, smart-open imports
    NextmvRunOperator(task_id="warm", app_id="sink", input={"a": 1}, wait_for_completion=False).execute(ctx)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = status("VmRSS")
    run_id = NextmvRunOperator(task_id="big", app_id="sink", input_uri=sys.argv[1], wait_for_completion=False).execute(ctx)
    upload_growth = status("VmHWM") - base
    ballast = bytearray(100 * 1024 * 1024)  # the probe must see this
    probe_growth = status("VmHWM") - base
    print(json.dumps({"run_id": run_id, "upload_growth": upload_growth, "probe_growth": probe_growth}))
    """
)


def test_200_mb_upload_peak_rss_growth_under_64_mib(emulator, nextmv_conn, json_file, tmp_path):
    src = json_file(200 * MIB, "big.json")
    emulator.reset()
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(src)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert emulator.stats()["nextmv"]["upload_bytes"] == 200 * MIB
    assert result["probe_growth"] >= 100 * MIB, result  # the measurement works
    print(f"200 MB upload: peak RSS growth {result['upload_growth'] / MIB:.1f} MiB")
    assert result["upload_growth"] < 64 * MIB, f"peak RSS grew {result['upload_growth'] / MIB:.1f} MiB"
