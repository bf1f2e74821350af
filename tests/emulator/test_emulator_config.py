"""Settings: defaults, config files (JSON and TOML), and command-line precedence."""

from __future__ import annotations

import json

import pytest

from optimization_emulator.config import DEFAULT_API_KEY, ConfigError, load_config
from optimization_emulator.limits import INLINE_BYTES, Limits


def test_defaults_have_the_documented_values_and_demo_apps():
    config = load_config([])
    assert (config.host, config.port, config.api_keys) == ("127.0.0.1", 8765, (DEFAULT_API_KEY,))
    assert (config.max_parallel_runs, config.queue_delay, config.presign_ttl) == (4, 0.0, 900.0)
    assert config.limits == Limits() and config.limits.inline_bytes == INLINE_BYTES
    assert {"production-planning", "knapsack"} <= set(config.apps)
    assert config.apps["knapsack"].instances == ("latest",)


def test_command_line_beats_the_config_file(tmp_path):
    path = tmp_path / "emulator.json"
    path.write_text(
        json.dumps(
            {
                "port": 9000,
                "max_parallel_runs": 2,
                "api_keys": ["file-key"],
                "apps": {"a": "from-file", "b": {"command": "b-cmd", "format": {"output": "multi-file"}}},
                "limits": {"upload_bytes": 1000},
            }
        )
    )
    config = load_config(
        ["--config", str(path), "--port", "0", "--api-key", "k1", "--api-key", "k2", "--app", "a=from-cli"]
    )
    assert (config.port, config.max_parallel_runs, config.api_keys) == (0, 2, ("k1", "k2"))
    assert config.apps["a"].command == "from-cli"
    assert (config.apps["b"].command, config.apps["b"].output_format) == ("b-cmd", "multi-file")
    assert config.limits.upload_bytes == 1000 and config.limits.download_bytes == Limits().download_bytes


def test_toml_is_chosen_by_extension(tmp_path):
    path = tmp_path / "emulator.toml"
    path.write_text('queue_delay = 1.5\n[apps.x]\ncommand = "cat"\ninstances = ["prod"]\n')
    config = load_config(["--config", str(path)])
    assert config.queue_delay == 1.5
    assert config.apps["x"].default_instance == "prod"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"prot": 1}, "unknown settings"),
        ({"apps": {"x": {"command": "cat", "format": {"input": "xml"}}}}, "unknown format"),
        ({"apps": {"x": {"cmd": "cat"}}}, "command"),
        ({"apps": {"x": {"command": "cat", "instances": []}}}, "at least one instance"),
        ({"limits": {"upload": 5}}, "limits"),
        ({"api_keys": [""]}, "API key"),
        ({"presign_ttl": 0}, "presign_ttl"),
    ],
)
def test_bad_config_files_are_refused_with_the_reason(tmp_path, settings, message):
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match=message):
        load_config(["--config", str(path)])
