"""A long poll whose client died must not consume NVCF's once-only answer."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from optimization_emulator.testing.cuopt import TINY_ROUTING
from optimization_emulator.testing.emulator import EmulatorProcess


def test_a_hung_up_long_poll_leaves_the_result_for_the_next_poll():
    with EmulatorProcess(api_keys=("k-dead",), extra_args=("--nvcf-queue-delay", "4")) as emu:
        auth = {"Authorization": "Bearer k-dead"}
        functions = requests.get(f"{emu.url}/v2/nvcf/functions", headers=auth, timeout=10).json()["functions"]
        fid = next(f["id"] for f in functions if f["status"] == "ACTIVE")
        body = {"requestHeader": {"pollDurationSeconds": 1}, "requestBody": {"data": TINY_ROUTING}}
        req_id = requests.post(
            f"{emu.url}/v2/nvcf/exec/functions/{fid}", json=body, headers=auth, timeout=10
        ).json()["reqId"]
        poll = (
            "import requests; requests.get("
            f"'{emu.url}/v2/nvcf/exec/status/{req_id}', "
            "headers={'Authorization': 'Bearer k-dead', 'NVCF-POLL-SECONDS': '20'}, timeout=30)"
        )
        doomed = subprocess.Popen([sys.executable, "-c", poll])
        time.sleep(1.5)
        doomed.kill()  # a worker or triggerer killed in the middle of its long poll
        doomed.wait()
        time.sleep(4)  # the answer is ready while the dead poll's window is still open
        answer = requests.get(
            f"{emu.url}/v2/nvcf/exec/status/{req_id}", headers={**auth, "NVCF-POLL-SECONDS": "5"}, timeout=30
        )
        assert answer.status_code == 200 and answer.json()["status"] == "fulfilled"
        assert emu.stats()["nvcf"]["results_delivered"] == 1
