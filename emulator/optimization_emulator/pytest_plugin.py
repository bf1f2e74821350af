"""pytest plugin: an emulator for your own DAG tests (loaded by pytest through the ``pytest11`` entry point).

    def test_my_dag(optimization_connections):
        # AIRFLOW_CONN_NEXTMV_DEFAULT / AIRFLOW_CONN_CUOPT_DEFAULT now point at a local emulator
        dag.test()

``optimization_emulator`` is one :class:`~optimization_emulator.testing.emulator.EmulatorProcess` per
test session (a real HTTP server on 127.0.0.1, real CPU solvers); ``optimization_connections`` sets the
provider's default connections to it for one test and returns the connection ids. Importing this
module costs nothing beyond the standard library and ``requests``: the server runs in a subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from optimization_emulator.testing.emulator import EmulatorProcess


@pytest.fixture(scope="session")
def optimization_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A running emulator (Nextmv Cloud ``/v1``, NVCF ``/v2/nvcf``), API key ``emulator-api-key``."""
    log = tmp_path_factory.mktemp("optimization-emulator") / "emulator.log"
    with EmulatorProcess(api_keys=("emulator-api-key",), log_path=log) as emulator:
        yield emulator


@pytest.fixture
def optimization_connections(
    optimization_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The provider's default connections, pointed at :func:`optimization_emulator` for one test.

    Returns ``{"nextmv": "nextmv_default", "cuopt": "cuopt_default"}``.
    """
    for name, value in optimization_emulator.airflow_connections().items():
        monkeypatch.setenv(name, value)
    return {"nextmv": "nextmv_default", "cuopt": "cuopt_default"}
