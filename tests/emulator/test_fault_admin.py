"""The emulator's fault rules as an API: matching semantics, the admin endpoints, config-file rules.

What each action does to a request is proved in ``test_emulator_faults.py``; this module covers the
rules themselves (``after``, ``times``, ``method``, ``route``, ``path_regex``, first match wins), how
they are added, listed and cleared over ``/_emulator/faults`` (``fault_admin.py``), how malformed
rules are refused, and rules that come from a config file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from optimization_emulator.config import ConfigError, load_config
from optimization_emulator.testing.emulator import EmulatorProcess

RUNS = "/v1/applications/{app_id}/runs"
APP = "/v1/applications/{app_id}"
UPLOAD = "/_presigned/{api}/uploads/{upload_id}"
EXPIRED = "the presigned URL has expired; request a new one"

pytestmark = pytest.mark.usefixtures("no_leftover_faults")


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorProcess]:
    """An emulator of this module's own: the tests reset its counters."""
    with EmulatorProcess(apps={"echo": "cat"}) as process:
        yield process
        log = process.log_tail(1_000_000)
    assert "Traceback" not in log and " ERROR " not in log, log  # faults are not server errors


# -- rule semantics ---------------------------------------------------------------------------------


def test_after_times_method_path_regex_and_first_rule_wins(emu, api) -> None:
    def statuses(path: str, n: int) -> list[int]:
        return [api.request("GET", path).status_code for _ in range(n)]

    [skipping] = emu.add_faults({"action": "status", "status": 503, "route": APP, "after": 2, "times": 2})
    assert statuses("/v1/applications/echo", 5) == [200, 200, 503, 503, 200]
    assert {k: v for k, v in emu.faults()[0].items() if k in ("id", "remaining", "hits", "matched")} == {
        "id": skipping,
        "remaining": 0,
        "hits": 2,
        "matched": 4,
    }
    emu.clear_faults()
    emu.add_faults(
        {"action": "status", "status": 500, "method": "POST", "route": APP},  # never a GET
        {"action": "status", "status": 502, "path_regex": "/knapsack$", "times": -1},
        {"action": "status", "status": 504, "route": "/v1/applications/{anything}", "times": -1},
    )
    assert statuses("/v1/applications/knapsack", 3) == [502, 502, 502]
    assert statuses("/v1/applications/echo", 2) == [504, 504]
    rules = emu.faults()
    assert [(r["hits"], r["remaining"]) for r in rules] == [(0, 1), (3, -1), (2, -1)]
    assert emu.stats()["faults"]["injected"] >= 7


def test_admin_and_health_are_never_faulted(emu, api) -> None:
    emu.add_faults({"action": "drop", "process": False, "times": -1})  # matches every API request
    assert requests.get(f"{emu.url}/_emulator/health", timeout=10).json() == {"status": "ok"}
    assert emu.stats()["faults"] is not None and emu.requests_log(limit=1)
    with pytest.raises(requests.ConnectionError):
        api.request("GET", "/v1/applications")


def test_clearing_by_delete_by_id_and_by_reset(emu, api) -> None:
    first, second = emu.add_faults(
        {"action": "status", "status": 503, "route": APP}, {"action": "status", "status": 500, "route": RUNS}
    )
    gone = requests.delete(f"{emu.url}/_emulator/faults/{first}", headers=api.headers, timeout=10)
    assert gone.status_code == 200 and [r["id"] for r in emu.faults()] == [second]
    assert (
        requests.delete(f"{emu.url}/_emulator/faults/{first}", headers=api.headers, timeout=10).status_code
        == 404
    )
    emu.clear_faults()
    assert emu.faults() == []
    assert api.request("GET", "/v1/applications/echo").status_code == 200
    emu.add_faults({"action": "status", "status": 503, "route": APP, "times": -1})
    assert api.request("GET", "/v1/applications/echo").status_code == 503
    emu.reset()
    assert emu.faults() == [] and emu.stats()["faults"] == {"injected": 0, "by_action": {}}
    assert api.request("GET", "/v1/applications/echo").status_code == 200


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        pytest.param({"action": "explode"}, "'action' must be one of", id="unknown-action"),
        pytest.param({"action": "status"}, "needs 'status'", id="status-missing"),
        pytest.param({"action": "status", "status": 99}, "'status' must be an HTTP status", id="status-99"),
        pytest.param(
            {"action": "drop", "seconds": 1}, "unknown keys ['seconds']", id="option-of-another-action"
        ),
        pytest.param(
            {"action": "drop", "route": "/v1/nothing/{x}"}, "unknown route(s) /v1/nothing/{x}", id="route"
        ),
        pytest.param({"action": "expire", "route": RUNS}, "presigned routes", id="expire-not-presigned"),
        pytest.param(
            {"action": "drop", "times": 0}, "'times' must be a positive integer or -1", id="times-0"
        ),
        pytest.param({"action": "drop", "after": -1}, "'after' must be an integer >= 0", id="after-negative"),
        pytest.param({"action": "drop", "path_regex": "("}, "not a valid regular expression", id="regex"),
        pytest.param({"action": "delay"}, "needs 'seconds'", id="delay-seconds-missing"),
        pytest.param(
            {"action": "delay", "seconds": 1, "stage": "response", "process": False},
            "stage 'response'",
            id="delay-response-without-processing",
        ),
    ],
)
def test_malformed_rules_are_refused(emu, rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        emu.add_faults({"action": "status", "status": 503}, rule)  # all or nothing
    assert message in str(info.value)
    assert "route(s)" in message or str(info.value).startswith("fault rule #2: ")
    assert emu.faults() == []  # nothing installed


def test_admin_endpoint_needs_the_api_key_and_a_rules_body(emu) -> None:
    url = f"{emu.url}/_emulator/faults"
    assert requests.get(url, timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    assert requests.post(url, json=[{"action": "drop"}], headers=headers, timeout=10).status_code == 400
    assert requests.post(url, data=b"{", headers=headers, timeout=10).status_code == 400


# -- rules from a config file -----------------------------------------------------------------------


def test_rules_from_a_toml_config_file_and_expire_matches_a_real_expiry(tmp_path: Path) -> None:
    config = tmp_path / "emulator.toml"
    config.write_text(
        "presign_ttl = 1\n"
        "[[faults]]\n"
        'action = "status"\nstatus = 503\nmethod = "GET"\nroute = "/v1/applications/{app}"\nafter = 1\n'
        "[[faults]]\n"
        f'action = "expire"\nroute = "{UPLOAD}"\n'
    )
    with EmulatorProcess(extra_args=("--config", str(config))) as emulator:
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        app_url = f"{emulator.url}/v1/applications/knapsack"
        assert [requests.get(app_url, headers=headers, timeout=10).status_code for _ in range(3)] == [
            200,
            503,
            200,
        ]
        rules = emulator.faults()
        assert [(r["action"], r["hits"], r["remaining"]) for r in rules] == [
            ("status", 1, 0),
            ("expire", 0, 1),
        ]

        grants = [
            requests.post(f"{app_url}/runs/uploadurl", headers=headers, timeout=10).json() for _ in range(2)
        ]
        injected = requests.put(grants[0]["upload_url"], data=b"{}", timeout=10)
        time.sleep(
            max(0.0, int(grants[1]["upload_url"].split("X-Expires=")[1].split("&")[0]) - time.time() + 0.1)
        )
        real = requests.put(grants[1]["upload_url"], data=b"{}", timeout=10)
        assert (injected.status_code, injected.headers["Content-Type"], injected.content) == (
            real.status_code,
            real.headers["Content-Type"],
            real.content,
        )
        assert real.status_code == 403 and real.json() == {"error": EXPIRED}


def test_a_bad_rule_in_the_config_file_is_a_config_error(tmp_path: Path) -> None:
    """A ConfigError: the command line prints it and exits with status 2 (test_emulator_cli)."""
    config = tmp_path / "bad.json"
    config.write_text(
        json.dumps({"faults": [{"action": "status", "status": 503}, {"action": "drop", "times": 0}]})
    )
    with pytest.raises(ConfigError, match=r"fault rule #2: 'times' must be a positive integer or -1"):
        load_config(["--config", str(config)])
    config.write_text(json.dumps({"faults": {"action": "drop"}}))
    with pytest.raises(ConfigError, match="fault rules must be a list"):
        load_config(["--config", str(config)])
    config.write_text(json.dumps({"faults": [{"action": "drop", "route": "/v1/applications/{app_id}/runs"}]}))
    assert load_config(["--config", str(config)]).faults[0]["process"] is True
