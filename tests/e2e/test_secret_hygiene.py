"""Secret hygiene end to end: nothing Airflow wrote while the e2e DAGs ran holds a credential.

Runs last (``e2e_last``): it reads what every other e2e test left — the example DAGs (Nextmv with a
presigned upload; cuOpt with **client credentials**, an asset upload and a trigger in the triggerer)
and the reliability DAGs (NVCF API key, client credentials in the triggerer, killed components).
Run alone, it first runs the example DAGs itself.

Where it looks: every file under the stack's ``AIRFLOW_HOME`` — task and trigger logs under
``logs/``, each component's output (``<component>.out``), ``airflow.cfg``, the sqlite database —
and every XCom value of every DAG run, read through the REST API. What it looks for:

* the Nextmv API key, the NVCF API key, the client secret, and ``base64(client_id:secret)`` (a
  logged ``Authorization: Basic`` header);
* any JWT the emulator issued: JWT-shaped strings whose payload says ``"iss": "nvcf-emulator"``,
  and the emulator's JWT header segment on its own (a truncated token); Airflow's own execution-API
  JWTs are counted and shown, not failed on;
* presigned-URL signatures: an ``X-Signature=`` query value (the emulator's name for it,
  ``emulator/optimization_emulator/signing.py``) that is not redacted.

Each count must be 0. The scan is shown to work: the same scanner finds known non-secret markers
(the example runs' Nextmv run id and NVCF request id) in the logs and XComs, and finds a real
emulator JWT and a real presigned URL planted in a sample.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from optimization_emulator.signing import SIGNATURE_PARAM
from optimization_emulator.testing.airflow_stack import AirflowApiError

pytestmark = [pytest.mark.e2e, pytest.mark.e2e_last, pytest.mark.timeout(420)]

EXAMPLE_NEXTMV = "example_nextmv_production_planning"
EXAMPLE_CUOPT = "example_cuopt_routing"
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")
#: ``X-Signature=<hex>`` (also URL-encoded as a whole); ``<redacted>`` / ``***`` do not match.
SIGNATURE = re.compile(rb"%s(?:=|%%3D)([0-9A-Fa-f]{16,})" % re.escape(SIGNATURE_PARAM.encode()))
EMULATOR_ISSUER = "nvcf-emulator"


@dataclasses.dataclass
class Scan:
    """Counts per category of what :meth:`scan` found, and where (file or XCom)."""

    literals: dict[str, bytes]
    emulator_jwt_header: bytes
    counts: Counter = dataclasses.field(default_factory=Counter)
    where: dict[str, Counter] = dataclasses.field(default_factory=dict)
    airflow_jwts: int = 0
    sources: int = 0
    scanned_bytes: int = 0

    def _add(self, category: str, location: str, n: int = 1) -> None:
        self.counts[category] += n
        self.where.setdefault(category, Counter())[location] += n

    def scan(self, blob: bytes, location: str) -> None:
        self.sources += 1
        self.scanned_bytes += len(blob)
        for name, value in self.literals.items():
            if n := blob.count(value):
                self._add(name, location, n)
        for match in JWT.finditer(blob):
            if _jwt_issuer(match.group()) == EMULATOR_ISSUER:
                self._add("emulator JWT", location)
            else:
                self.airflow_jwts += 1
        if n := blob.count(self.emulator_jwt_header):
            self._add("emulator JWT header segment", location, n)
        for _ in SIGNATURE.finditer(blob):
            self._add("presigned signature", location)

    def report(self) -> str:
        lines = [f"scanned {self.sources} files/XComs, {self.scanned_bytes:,} bytes"]
        for category in [
            *self.literals,
            "emulator JWT",
            "emulator JWT header segment",
            "presigned signature",
        ]:
            lines.append(f"  {category}: {self.counts[category]}")
            for location, n in (self.where.get(category) or Counter()).most_common(5):
                lines.append(f"      {n} in {location}")
        lines.append(f"  (Airflow's own JWTs, not the provider's: {self.airflow_jwts})")
        return "\n".join(lines)


def _jwt_issuer(token: bytes) -> str | None:
    try:
        payload = token.split(b".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except (ValueError, IndexError, binascii.Error):
        return None
    return claims.get("iss") if isinstance(claims, dict) else None


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _all_xcoms(stack: Any) -> list[tuple[str, Any]]:
    """``(where, value)`` of every XCom of every DAG run on the stack, through the REST API."""
    found = []
    for dag_id in stack.dag_ids():
        for run in stack.api("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns?limit=1000")["dag_runs"]:
            run_id = run["dag_run_id"]
            base = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
            for entry in stack.api("GET", f"{base}/~/xcomEntries?limit=1000")["xcom_entries"]:
                task_id, key, map_index = entry["task_id"], entry["key"], entry.get("map_index", -1)
                value = stack.xcom(dag_id, run_id, task_id, key=key, map_index=map_index)
                found.append((f"xcom {dag_id}/{run_id}/{task_id}[{map_index}]/{key}", value))
    return found


def _ensure_example_runs(stack: Any, tmp_path: Path) -> dict[str, str]:
    """A successful run of each example DAG (the ones the other tests made, or new ones)."""
    runs = {}
    for dag_id in (EXAMPLE_NEXTMV, EXAMPLE_CUOPT):
        try:
            existing = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?state=success&limit=10")["dag_runs"]
        except AirflowApiError as exc:
            if exc.status != 404:
                raise
            existing = []
        if existing:
            runs[dag_id] = existing[0]["dag_run_id"]
            continue
        run_id = f"hygiene-{dag_id}"
        run = stack.run_dag(dag_id, run_id, conf={"work_uri": str(tmp_path / dag_id)}, timeout=240)
        assert run["state"] == "success", stack.failure_report(dag_id, run_id)
        runs[dag_id] = run_id
    return runs


def _token(emulator: Any, client_id: str, secret: str) -> str:
    response = requests.post(
        emulator.token_url,
        auth=(client_id, secret),
        data={"grant_type": "client_credentials", "scope": "invoke_function list_functions"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def test_no_secret_in_logs_outputs_or_xcoms(airflow_stack, e2e_emulator, e2e_secrets, tmp_path):
    stack, emulator, secrets = airflow_stack, e2e_emulator, e2e_secrets
    runs = _ensure_example_runs(stack, tmp_path)
    stats = emulator.stats()
    # the credentials were really in play: client-credentials tokens, presigned uploads on both APIs
    assert stats["nvcf"]["tokens_issued"] >= 1, stats["nvcf"]
    assert stats["nextmv"]["uploads"] >= 1 and stats["nvcf"]["uploads"] >= 1, stats

    basic = base64.b64encode(f"{secrets.client_id}:{secrets.client_secret}".encode())
    token = _token(emulator, secrets.client_id, secrets.client_secret)
    scan = Scan(
        literals={
            "Nextmv API key": secrets.nextmv_api_key.encode(),
            "NVCF API key": secrets.nvcf_api_key.encode(),
            "client secret": secrets.client_secret.encode(),
            "cuOpt server gateway secret": secrets.gateway_secret.encode(),
            "client id:secret (Basic)": basic,
        },
        emulator_jwt_header=token.split(".")[0].encode(),
    )

    # the scanner works: it finds planted secrets, a real emulator JWT and a real presigned URL
    upload = requests.post(
        f"{emulator.url}/v1/applications/production-planning/runs/uploadurl",
        headers={"Authorization": f"Bearer {secrets.nextmv_api_key}"},
        timeout=10,
    )
    upload.raise_for_status()
    probe = Scan(literals=scan.literals, emulator_jwt_header=scan.emulator_jwt_header)
    sample = f"Authorization: Bearer {token}\nPUT {upload.json()['upload_url']}\nBasic {basic.decode()}\n"
    sample += f"{secrets.nextmv_api_key} {secrets.nvcf_api_key} {secrets.client_secret}"
    probe.scan(sample.encode(), "sample")
    assert probe.counts == Counter(
        {
            "Nextmv API key": 1,
            "NVCF API key": 1,
            "client secret": 1,
            "client id:secret (Basic)": 1,
            "emulator JWT": 1,
            "emulator JWT header segment": 1,
            "presigned signature": 1,
        }
    ), probe.report()

    # every file under AIRFLOW_HOME: task and trigger logs, component output, config, database
    files = sorted(p for p in stack.home.rglob("*") if p.is_file())
    log_files = [p for p in files if stack.logs_folder in p.parents]
    outputs = [p for p in files if p.suffix == ".out"]
    assert log_files and {f"{name}.out" for name in stack.components} <= {p.name for p in outputs}
    for path in files:
        scan.scan(path.read_bytes(), str(path.relative_to(stack.home)))
    xcoms = _all_xcoms(stack)
    for where, value in xcoms:
        scan.scan(json.dumps(value, default=str).encode(), where)
    print(
        f"\nsecret hygiene: {len(files)} files ({len(log_files)} logs), {len(xcoms)} XComs\n{scan.report()}"
    )

    # ... and it sees what is there: known non-secret markers are found in the logs and the XComs
    markers = Scan(
        literals={
            "nextmv run id": stack.xcom(EXAMPLE_NEXTMV, runs[EXAMPLE_NEXTMV], "submit_plan").encode(),
            "nvcf request id": stack.xcom(EXAMPLE_CUOPT, runs[EXAMPLE_CUOPT], "solve_routes").encode(),
        },
        emulator_jwt_header=scan.emulator_jwt_header,
    )
    for path in log_files:
        markers.scan(path.read_bytes(), str(path))
    assert markers.counts["nextmv run id"] > 0 and markers.counts["nvcf request id"] > 0, markers.report()
    xcom_markers = Scan(literals=markers.literals, emulator_jwt_header=scan.emulator_jwt_header)
    for where, value in xcoms:
        xcom_markers.scan(json.dumps(value, default=str).encode(), where)
    assert xcom_markers.counts["nextmv run id"] > 0, xcom_markers.report()
    assert xcom_markers.counts["nvcf request id"] > 0, xcom_markers.report()

    leaks = {category: n for category, n in scan.counts.items() if n}
    assert leaks == {}, scan.report()
