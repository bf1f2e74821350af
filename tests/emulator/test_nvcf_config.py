"""NVCF settings: defaults, the config file's ``nvcf`` table, and the flags that override it."""

from __future__ import annotations

import json

import pytest

from optimization_emulator.config import ConfigError, load_config
from optimization_emulator.nvcf_config import CUOPT_FUNCTION_ID, DEFAULT_CLIENTS


def test_defaults_follow_the_reference() -> None:
    nvcf = load_config([]).nvcf
    assert dict(nvcf.clients) == DEFAULT_CLIENTS and nvcf.token_ttl == 600
    assert (nvcf.poll_seconds, nvcf.max_poll_seconds) == (5, 300)
    assert nvcf.max_inline_result == 5 * 1024 * 1024 and nvcf.asset_max_bytes == 5_000_000_000
    assert (nvcf.asset_url_ttl, nvcf.result_url_ttl) == (3600, 86400)
    assert {f["id"] for f in nvcf.functions} == {CUOPT_FUNCTION_ID}
    assert [f["status"] for f in nvcf.functions] == ["INACTIVE", "ACTIVE", "ACTIVE", "DEPLOYING"]


def test_command_line_beats_the_nvcf_table(tmp_path) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(
        json.dumps(
            {
                "nvcf": {
                    "token_ttl": 30,
                    "queue_delay": 2,
                    "clients": {"file": "s"},
                    "functions": [{"id": "f", "versionId": "v"}],
                }
            }
        )
    )
    nvcf = load_config(
        [
            "--config",
            str(path),
            "--token-ttl",
            "5",
            "--client",
            "a:b",
            "--client",
            "c:d:e",
            "--nvcf-max-inline-result",
            "1000",
            "--nvcf-max-parallel",
            "3",
        ]
    ).nvcf
    assert dict(nvcf.clients) == {"a": "b", "c": "d:e"}
    assert (nvcf.token_ttl, nvcf.queue_delay, nvcf.max_inline_result, nvcf.max_parallel) == (5, 2, 1000, 3)
    assert [(f["id"], f["versionId"], f["name"], f["status"]) for f in nvcf.functions] == [
        ("f", "v", "cuopt", "ACTIVE")
    ]


@pytest.mark.parametrize(
    ("args", "settings", "message"),
    [
        (["--client", "no-secret"], None, "ID:SECRET"),
        (["--token-ttl", "0"], None, "token_ttl"),
        (["--nvcf-poll-seconds", "301"], None, "poll_seconds"),
        ([], {"nvcf": {"surprise": 1}}, "unknown nvcf settings"),
        ([], {"nvcf": {"functions": [{"id": "f"}]}}, "versionId"),
        ([], {"nvcf": {"functions": [{"id": "f", "versionId": "v", "status": "ON"}]}}, "status"),
        ([], {"nvcf": {"functions": [{"id": "f", "versionId": "v", "createdAt": "yesterday"}]}}, "createdAt"),
    ],
)
def test_bad_nvcf_settings_are_config_errors(tmp_path, args, settings, message) -> None:
    if settings is not None:
        path = tmp_path / "emulator.json"
        path.write_text(json.dumps(settings))
        args = [*args, "--config", str(path)]
    with pytest.raises(ConfigError, match=message):
        load_config(args)
