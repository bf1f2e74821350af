"""End-to-end fixtures: the example DAGs on a real Airflow 3 stack, against a real emulator process.

One emulator and one Airflow stack (api-server, scheduler, dag-processor, triggerer; sqlite +
LocalExecutor; ``example_dags/`` copied into a temp AIRFLOW_HOME) per session. Connections reach
the components as ``AIRFLOW_CONN_*`` variables. When an e2e test fails, the tail of every
component's output and of the emulator's log is attached to the report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider.testing.airflow_stack import AirflowStack
from airflow_provider.testing.demo import emulator_connections

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
E2E_API_KEY = "e2e-api-key"


@pytest.fixture(scope="session")
def e2e_emulator(tmp_path_factory):
    """The emulator process the stack's connections point at (built-in apps only)."""
    from airflow_provider.testing.emulator import EmulatorProcess

    log = tmp_path_factory.mktemp("e2e-emulator") / "emulator.log"
    # Nextmv runs stay queued and NVCF requests pending for 5 s, so a sensor always finds its run or
    # request unfinished and defers, and the cuOpt operator (1 s poll window) never receives the
    # result itself: the "trigger ran in the triggerer and stored the result" assertions never
    # depend on how fast the solve happens to be.
    delays = ("--queue-delay", "5", "--nvcf-queue-delay", "5")
    with EmulatorProcess(api_keys=(E2E_API_KEY,), log_path=log, extra_args=delays) as emu:
        yield emu


@pytest.fixture(scope="session")
def airflow_stack(e2e_emulator, tmp_path_factory):
    """A running Airflow stack with ``example_dags/``; the default connections point at the emulator."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = emulator_connections(e2e_emulator.url, e2e_emulator.api_key)
    stack = AirflowStack(home, EXAMPLE_DAGS, extra_env=env)
    try:
        stack.start()
        print(
            f"\nairflow stack: migrate {stack.timings['migrate']:.1f} s, healthy {stack.timings['healthy']:.1f} s"
        )
        yield stack
    finally:
        stack.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        stack, emulator = funcargs.get("airflow_stack"), funcargs.get("e2e_emulator")
        if isinstance(stack, AirflowStack):
            report.sections.append(("airflow components (tails)", stack.tails(60)))
        if emulator is not None:
            report.sections.append(("emulator log (tail)", emulator.log_tail(6000)))
    return report
