"""Shared fixtures: the emulator (a real HTTP server on 127.0.0.1) and a real local S3 (moto server).

Nothing here mocks a service: hooks, operators, triggers and sensors talk over real sockets.
Airflow is pointed at a throw-away AIRFLOW_HOME before anything imports it; connections come from
``AIRFLOW_CONN_*`` environment variables, which Airflow resolves without a metadata database.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="apo-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

#: Test apps registered on the shared emulator, besides the built-in demo apps.
TEST_APPS = {
    "echo": "cat",
    "slow": "sleep 30; cat",
    "fail": "echo 'infeasible: demand exceeds capacity' >&2; exit 3",
    # reads (and drops) its input, answers a constant: for upload tests that need no echo back
    "sink": "cat > /dev/null; echo '{\"ok\": true}'",
}


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """One emulator process for the session (reset counters per test with ``emulator.reset()``)."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with EmulatorProcess(api_keys=("test-api-key",), apps=TEST_APPS, log_path=log) as emu:
        yield emu


def conn_json(conn_type: str, host: str, password: str, **extra) -> str:
    payload = {"conn_type": conn_type, "host": host, "password": password}
    if extra:
        payload["extra"] = extra
    return json.dumps(payload)


@pytest.fixture
def cuopt_key_conn(monkeypatch):
    """``cuopt_key_conn(emulator, conn_id="cuopt_default")``: an ``AIRFLOW_CONN_*`` cuOpt connection to
    ``emulator`` with its NVCF API key and the function chosen by name (newest ACTIVE version), for
    emulators a test module starts itself. Returns the connection id."""

    def point(emulator, conn_id: str = "cuopt_default") -> str:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            conn_json("cuopt", emulator.url, emulator.api_key, function_name="cuopt"),
        )
        return conn_id

    return point


@pytest.fixture
def cuopt_conn(emulator, cuopt_key_conn):
    """``cuopt_default`` with an NVCF API key pointing at the shared emulator."""
    return cuopt_key_conn(emulator)


def cuopt_client_conn_json(emulator, client_id="emulator-client", secret="emulator-secret") -> str:
    """A client-credentials cuOpt connection against ``emulator`` (token endpoint ``/token``)."""
    return json.dumps(
        {
            "conn_type": "cuopt",
            "host": emulator.url,
            "extra": {
                "client_id": client_id,
                "client_secret": secret,
                "token_url": f"{emulator.url}/token",
                "function_name": "cuopt",
            },
        }
    )


@pytest.fixture
def cuopt_client_conn(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CUOPT_CLIENT", cuopt_client_conn_json(emulator))
    return "cuopt_client"


@pytest.fixture
def client_conn_json():
    """``client_conn_json(emulator, client_id=..., secret=...)`` for emulators started by a test."""
    return cuopt_client_conn_json


def cuopt_server_conn_json(emulator, **extra) -> str:
    """A ``cuopt_server`` connection to ``emulator``'s self-hosted cuOpt API (no credentials: the
    server has none; ``extra`` adds e.g. ``result_dir`` or ``auth_header_name``)."""
    payload = {"conn_type": "cuopt_server", "host": "127.0.0.1", "port": emulator.cuopt_server_port}
    password = extra.pop("password", None)
    if password:
        payload["password"] = password
    if extra:
        payload["extra"] = extra
    return json.dumps(payload)


@pytest.fixture
def cuopt_server_point(monkeypatch):
    """``cuopt_server_point(emulator, conn_id="cuopt_server_default", **extra)``: an ``AIRFLOW_CONN_*``
    ``cuopt_server`` connection to ``emulator``; returns the connection id."""

    def point(emulator, conn_id: str = "cuopt_server_default", **extra) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", cuopt_server_conn_json(emulator, **extra))
        return conn_id

    return point


@pytest.fixture(scope="module")
def queued_cuopt_server():
    """A module's own emulator whose self-hosted cuOpt jobs stay queued for 1.5 s, so a deferrable
    path always defers (the operator and trigger tests of that backend)."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(extra_args=("--cuopt-server-queue-delay", "1.5")) as emu:
        yield emu


@pytest.fixture
def queued_server_conn(queued_cuopt_server, cuopt_server_point):
    """A ``cuopt_server`` connection (``cuopt_server_queued``) to :func:`queued_cuopt_server`, reset."""
    queued_cuopt_server.reset()
    return cuopt_server_point(queued_cuopt_server, "cuopt_server_queued")


@pytest.fixture
def cuopt_server_conn(emulator, cuopt_server_point):
    """``cuopt_server_default`` pointing at the shared emulator's self-hosted cuOpt API."""
    emulator.reset()
    return cuopt_server_point(emulator)


@pytest.fixture
def nextmv_conn(emulator, monkeypatch):
    """``nextmv_default`` pointing at the emulator, through the environment (no Airflow DB needed)."""
    monkeypatch.setenv("AIRFLOW_CONN_NEXTMV_DEFAULT", conn_json("nextmv", emulator.url, emulator.api_key))
    return "nextmv_default"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto in server mode: a real S3 HTTP endpoint reached by boto3/smart-open over a socket."""
    from optimization_emulator.testing.s3 import LocalS3

    server = LocalS3(tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A fresh bucket on the local S3 server; smart-open/boto3 find it through AWS_ENDPOINT_URL."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    client = s3_server.client()
    bucket = f"bucket-{time.monotonic_ns()}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket  # type: ignore[attr-defined]
    return client


class FakeTaskInstance:
    """Records XComs like a task instance does; the Airflow-side stand-in for unit-level operator tests.

    The service side is never faked: operators under test talk to the emulator over sockets.
    End-to-end tests (tests/e2e) run the same operators in a real Airflow stack.
    """

    def __init__(self, try_number: int = 1) -> None:
        import uuid

        self.xcoms: dict[str, object] = {}
        self.dag_id, self.task_id, self.map_index = "test_dag", "solve", -1
        self.run_id = f"manual__{uuid.uuid4().hex}"
        self.try_number = try_number

    def xcom_push(self, key: str, value: object) -> None:
        json.dumps(value)  # XCom values must be JSON-serializable
        self.xcoms[key] = value


class DictStateStore:
    """The task state store's get/set contract (Airflow 3.3 ``context["task_state_store"]``)."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def set(self, key: str, value, *, retention=None) -> None:
        assert value is not None
        self.data[key] = json.loads(json.dumps(value))


@pytest.fixture
def context():
    return {"ti": FakeTaskInstance(), "task_state_store": DictStateStore()}


@pytest.fixture
def next_try():
    """``next_try(context, keep_store=True)``: the context of the task's next try (same task instance,
    try_number + 1, fresh XComs); without ``keep_store`` it has no task state store (Airflow < 3.3)."""

    def make(context, keep_store: bool = True):
        ti = FakeTaskInstance(try_number=context["ti"].try_number + 1)
        ti.dag_id, ti.task_id, ti.run_id, ti.map_index = (
            context["ti"].dag_id,
            context["ti"].task_id,
            context["ti"].run_id,
            context["ti"].map_index,
        )
        new = {"ti": ti}
        if keep_store and "task_state_store" in context:
            new["task_state_store"] = context["task_state_store"]
        return new

    return make


def write_json_file(path: Path, size: int) -> Path:
    """Write a valid JSON document of exactly ``size`` bytes (size >= 16), streaming, in constant memory."""
    head, tail = b'{"padding":"', b'"}'
    body = size - len(head) - len(tail)
    assert body >= 0
    block = b"x" * (1024 * 1024)
    with open(path, "wb") as f:
        f.write(head)
        while body > 0:
            n = min(body, len(block))
            f.write(block[:n])
            body -= n
        f.write(tail)
    return path


@pytest.fixture
def json_file(tmp_path):
    """``json_file(size, name="input.json") -> Path``: a valid JSON file of an exact size."""
    return lambda size, name="input.json": write_json_file(tmp_path / name, size)


# ------------------------------------------------------------------------------------ reliability ledger
#: One row per fault scenario run in this session; ``make reliability`` turns them into the table of
#: docs/reliability.md (between its ``counts:start``/``counts:end`` markers).
LEDGER: list[dict] = []
SIGNATURE = re.compile(r"X-Signature=[0-9A-Za-z_-]{8,}")
JWT = re.compile(r"eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}")


def count_secrets(texts, secrets) -> int:
    """Occurrences of known secrets, presigned signatures and JWTs in ``texts``."""
    total = 0
    for text in texts:
        text = str(text)
        total += sum(text.count(s) for s in secrets if s)
        total += len(SIGNATURE.findall(text)) + len(JWT.findall(text))
    return total


@pytest.fixture
def ledger(request, caplog):
    """``ledger(fault, behaviour, runs=..., duplicates=..., retries=..., orphaned_assets=..., texts=(), secrets=())``.

    Records the outcome of one fault scenario; counts leaked secrets in the captured log plus
    ``texts`` (exception messages, event payloads), so a leak makes the test fail too.
    """

    def record(fault, behaviour, *, runs, duplicates, retries, orphaned_assets=0, texts=(), secrets=()):
        leaked = count_secrets([caplog.text, *texts], secrets)
        LEDGER.append(
            {
                "fault": fault,
                "behaviour": behaviour,
                "test": request.node.nodeid.split("::", 1)[0] + "::" + request.node.name,
                "runs": runs,
                "retries": retries,
                "duplicates": duplicates,
                "orphaned_assets": orphaned_assets,
                "leaked_secrets": leaked,
            }
        )
        assert duplicates == 0 and orphaned_assets == 0 and leaked == 0, LEDGER[-1]

    return record


def pytest_sessionfinish(session, exitstatus):
    if not LEDGER:
        return
    out = REPO / ".reliability"
    out.mkdir(exist_ok=True)
    (out / "last-run.json").write_text(json.dumps(LEDGER, indent=1))
    if os.environ.get("RELIABILITY_DOC"):
        _rewrite_reliability_doc(LEDGER)


def _rewrite_reliability_doc(rows) -> None:
    import datetime

    doc = REPO / "docs" / "reliability.md"
    text = doc.read_text()
    start, end = "<!-- counts:start -->", "<!-- counts:end -->"
    head = "| fault | what the provider does | test | runs | retries | duplicates | orphaned assets | leaked secrets |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['fault']} | {r['behaviour']} | `{r['test']}` | {r['runs']} | {r['retries']} | {r['duplicates']} "
            f"| {r['orphaned_assets']} | {r['leaked_secrets']} |"
        )
    totals = {
        k: sum(r[k] for r in rows)
        for k in ("runs", "retries", "duplicates", "orphaned_assets", "leaked_secrets")
    }
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(
        f"| **total ({len(rows)} scenarios, {stamp})** | | | **{totals['runs']}** | **{totals['retries']}** | "
        f"**{totals['duplicates']}** | **{totals['orphaned_assets']}** | **{totals['leaked_secrets']}** |"
    )
    body = "\n".join(lines)
    doc.write_text(text[: text.index(start) + len(start)] + "\n" + body + "\n" + text[text.index(end) :])
