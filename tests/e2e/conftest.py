"""End-to-end fixtures: the example DAGs and the reliability test DAGs on one real Airflow 3 stack,
against two real emulator processes.

One Airflow stack per session (api-server, scheduler, dag-processor, triggerer; sqlite +
LocalExecutor) whose DAG folder is ``example_dags/`` merged with ``tests/e2e/dags/`` (the example
DAGs themselves are untouched). Two emulators:

* ``e2e_emulator`` serves the example DAGs (connections ``nextmv_default``, and ``cuopt_default``
  with **client credentials**, so JWTs and a client secret are in play);
* ``slow_emulator`` serves the reliability DAGs: its Nextmv app ``gated`` runs until the test
  opens the gate (:func:`nextmv_gate`; at most ``GATE_MAX_SECONDS``) and its NVCF requests stay
  pending ``NVCF_DELAY`` s, long enough to kill components while solves are in flight (connections
  ``nextmv_slow``, ``cuopt_slow`` with the NVCF API key, ``cuopt_slow_cc`` with client
  credentials). Its counters only move for the reliability tests.

Every task's OpenLineage events go to one file (:func:`openlineage_events`, the OpenLineage
provider's file transport).

Every secret is distinct and recognisable (:data:`SECRETS`), so ``test_secret_hygiene.py`` can
grep for each. Connections reach the components as ``AIRFLOW_CONN_*`` variables. Tests that kill
components (``test_reliability.py``) leave the stack healthy; tests marked ``e2e_last`` run after
every other e2e test. When an e2e test fails, the tail of every component's output and of the
emulators' logs is attached to the report.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimization_emulator.testing.airflow_stack import AirflowStack

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"
#: Seconds every NVCF request of the slow emulator stays pending.
NVCF_DELAY = 25
#: Seconds every self-hosted cuOpt server job of the slow emulator stays queued (long enough to kill
#: the triggerer, wait out its health threshold and start a new one).
CUOPT_SERVER_DELAY = 45
#: The slow emulator's Nextmv app ``gated`` ends this long after its start even if the gate stays shut.
GATE_MAX_SECONDS = 120
#: OpenLineage events of every task (the provider's file transport, one JSON event per line), in AIRFLOW_HOME.
OPENLINEAGE_EVENTS = "openlineage-events.jsonl"
#: After a triggerer dies, its triggers are taken over once its heartbeat is this old (default 30 s).
TRIGGERER_HEALTH_CHECK_THRESHOLD = 10


@dataclasses.dataclass(frozen=True)
class E2ESecrets:
    """Every credential the e2e stack is given (test-only values, distinct and greppable)."""

    nextmv_api_key: str = "e2e-nextmv-key-5c1f0a9e7b3d42c8"
    nvcf_api_key: str = "nvapi-e2e-nvcf-key-8d2b6e4f1a7c9035"
    #: The value of the gateway header on the ``cuopt_server_slow`` connection (the server itself
    #: ignores it; it must never show up in a log or an XCom either).
    gateway_secret: str = "e2e-gateway-secret-71c4d9a2e0b65f38"
    client_id: str = "e2e-client"
    client_secret: str = "e2e-client-secret-3f9a7c1e5b2d8064"

    @property
    def api_keys(self) -> tuple[str, str]:
        return (self.nextmv_api_key, self.nvcf_api_key)

    @property
    def clients(self) -> dict[str, str]:
        return {self.client_id: self.client_secret}


SECRETS = E2ESecrets()


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e_last: run after every other end-to-end test")


def pytest_collection_modifyitems(config, items):
    """``e2e_last`` tests (secret hygiene: it greps what all the others left) go to the end."""
    items.sort(key=lambda item: item.get_closest_marker("e2e_last") is not None)


@pytest.fixture(scope="session")
def e2e_secrets() -> E2ESecrets:
    return SECRETS


@pytest.fixture(scope="session")
def e2e_emulator(tmp_path_factory):
    """The emulator the example DAGs' connections point at (built-in apps only)."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    log = tmp_path_factory.mktemp("e2e-emulator") / "emulator.log"
    # Nextmv runs stay queued and NVCF requests pending for 5 s, so a sensor always finds its run or
    # request unfinished and defers, and the cuOpt operator (1 s poll window) never receives the
    # result itself: the "trigger ran in the triggerer and stored the result" assertions never
    # depend on how fast the solve happens to be.
    delays = ("--queue-delay", "5", "--nvcf-queue-delay", "5")
    with EmulatorProcess(
        api_keys=SECRETS.api_keys, clients=SECRETS.clients, log_path=log, extra_args=delays
    ) as emu:
        yield emu


@pytest.fixture(scope="session")
def _gate_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nextmv-gate") / "open"


@pytest.fixture(scope="session")
def slow_emulator(tmp_path_factory, _gate_file):
    """The emulator of the reliability DAGs: solves last long enough to kill things meanwhile."""
    from optimization_emulator.testing.emulator import EmulatorProcess

    log = tmp_path_factory.mktemp("slow-emulator") / "emulator.log"
    args = (
        "--max-parallel-runs",
        "32",  # every run starts at once: none waits in a queue
        "--nvcf-queue-delay",
        str(NVCF_DELAY),
        "--nvcf-max-parallel",
        "2",
        "--cuopt-server-queue-delay",
        str(CUOPT_SERVER_DELAY),
    )
    # echoes its input once the gate file exists: a run ends when the test says so, however slowly
    # Airflow got there on a loaded machine
    polls = GATE_MAX_SECONDS * 5
    gated = f"i=0; while [ ! -e {_gate_file} ] && [ $i -lt {polls} ]; do sleep 0.2; i=$((i+1)); done; cat"
    with EmulatorProcess(
        api_keys=SECRETS.api_keys,
        clients=SECRETS.clients,
        apps={"gated": gated},
        log_path=log,
        extra_args=args,
    ) as emu:
        yield emu


class NextmvGate:
    """The gate of the slow emulator's ``gated`` app: shut at the start of each test using it."""

    def __init__(self, path: Path):
        self.path = path
        path.unlink(missing_ok=True)

    def open(self) -> None:
        self.path.touch()

    @property
    def is_open(self) -> bool:
        return self.path.exists()


@pytest.fixture
def nextmv_gate(slow_emulator, _gate_file) -> Iterator[NextmvGate]:
    """Shuts the gate; the test opens it (``.open()``) when the ``gated`` runs may end."""
    gate = NextmvGate(_gate_file)
    yield gate
    gate.open()  # never leave runs waiting for the next test


def stack_connections(
    e2e_url: str,
    e2e_token_url: str,
    slow_url: str,
    slow_token_url: str,
    e2e_cuopt_server_port: int | None = None,
    slow_cuopt_server_port: int | None = None,
) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables of the e2e stack (see the module docstring); with the emulators'
    self-hosted cuOpt ports also ``cuopt_server_default`` (example DAG) and ``cuopt_server_slow``
    (with a gateway header whose value is a secret)."""

    def client_credentials(url: str, token_url: str) -> dict:
        return {
            "conn_type": "cuopt",
            "host": url,
            "extra": {
                "client_id": SECRETS.client_id,
                "client_secret": SECRETS.client_secret,
                "token_url": token_url,
                "function_name": "cuopt",
            },
        }

    conns = {
        "NEXTMV_DEFAULT": {"conn_type": "nextmv", "host": e2e_url, "password": SECRETS.nextmv_api_key},
        "CUOPT_DEFAULT": client_credentials(e2e_url, e2e_token_url),
        "NEXTMV_SLOW": {"conn_type": "nextmv", "host": slow_url, "password": SECRETS.nextmv_api_key},
        "CUOPT_SLOW": {
            "conn_type": "cuopt",
            "host": slow_url,
            "password": SECRETS.nvcf_api_key,
            "extra": {"function_name": "cuopt"},
        },
        "CUOPT_SLOW_CC": client_credentials(slow_url, slow_token_url),
    }
    if e2e_cuopt_server_port is not None:
        conns["CUOPT_SERVER_DEFAULT"] = {
            "conn_type": "cuopt_server",
            "host": "127.0.0.1",
            "port": e2e_cuopt_server_port,
        }
    if slow_cuopt_server_port is not None:
        conns["CUOPT_SERVER_SLOW"] = {
            "conn_type": "cuopt_server",
            "host": "http://127.0.0.1",
            "port": slow_cuopt_server_port,
            "password": SECRETS.gateway_secret,
            "extra": {"auth_header_name": "X-Gateway-Key"},
        }
    return {f"AIRFLOW_CONN_{k}": json.dumps(v) for k, v in conns.items()}


@pytest.fixture(scope="session")
def airflow_stack(e2e_emulator, slow_emulator, tmp_path_factory):
    """A running Airflow stack with ``example_dags/`` and ``tests/e2e/dags/``; connections as above."""
    dags = tmp_path_factory.mktemp("e2e-dags")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(EXAMPLE_DAGS, dags, dirs_exist_ok=True, ignore=ignore)
    shutil.copytree(TEST_DAGS, dags, dirs_exist_ok=True, ignore=ignore)
    home = tmp_path_factory.mktemp("airflow-home")
    env = stack_connections(
        e2e_emulator.url,
        e2e_emulator.token_url,
        slow_emulator.url,
        slow_emulator.token_url,
        e2e_emulator.cuopt_server_port,
        slow_emulator.cuopt_server_port,
    )
    env["AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD"] = str(TRIGGERER_HEALTH_CHECK_THRESHOLD)
    # the OpenLineage provider (extra "openlineage") emits every task's events to one file
    transport = {"type": "file", "log_file_path": str(home / OPENLINEAGE_EVENTS), "append": True}
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport)
    # 4 LocalExecutor workers: the worker-kill test holds 3 slots at once (sync waits, a held task)
    stack = AirflowStack(home, dags, extra_env=env, parallelism=4)
    try:
        stack.start()
        print(
            f"\nairflow stack: migrate {stack.timings['migrate']:.1f} s, healthy {stack.timings['healthy']:.1f} s"
        )
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def openlineage_events(airflow_stack) -> Path:
    """The file the OpenLineage provider's file transport appends every task's events to."""
    return airflow_stack.home / OPENLINEAGE_EVENTS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        stack = funcargs.get("airflow_stack")
        if isinstance(stack, AirflowStack):
            report.sections.append(("airflow components (tails)", stack.tails(60)))
        for name in ("e2e_emulator", "slow_emulator"):
            emulator = funcargs.get(name)
            if emulator is not None:
                report.sections.append((f"{name} log (tail)", emulator.log_tail(6000)))
    return report
