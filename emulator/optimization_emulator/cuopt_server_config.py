"""Settings of the self-hosted cuOpt server emulation (``/cuopt/...`` on its own port).

They live in ``EmulatorConfig.cuopt_server``; the config file's ``cuopt_server`` table and the
``--cuopt-server-*`` flags fill them (command line > file > defaults). Each stands for an environment
variable of the real ``cuopt_server`` 26.10 (shared/reference/cuopt_selfhosted.md §1), so that a test
can set up what a deployment would:

=====================  =========================  ==================================================
setting                real server                meaning
=====================  =========================  ==================================================
``port``               ``CUOPT_SERVER_PORT``      ``None``: not served; ``0``: a free port
``mode``               ``CUOPT_SERVER_TYPE``      ``legacy`` (the container default) or ``proxy``
``data_dir``           ``CUOPT_DATA_DIR``         root of ``CUOPT-DATA-FILE`` problems
``result_dir``         ``CUOPT_RESULT_DIR``       where large results are written
``max_result``         ``CUOPT_MAX_RESULT``       result-file threshold in KB (x 1000 bytes)
``result_mode``        ``CUOPT_RESULT_MODE``      octal mode of result files
``check_client``       ``CUOPT_CHECK_CLIENT``     warn about a ``CLIENT-VERSION`` of another release
``max_request_bytes``  ``CUOPT_MAX_REQUEST_SIZE`` proxy only: bigger ``Content-Length`` -> 413
=====================  =========================  ==================================================

``queue_delay`` and ``max_parallel`` are the emulator's own: a minimum time every job stays
``queued`` (to test polling), and how many solver processes run at once.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optimization_emulator.settings import (
    ConfigError,
    SectionOption,
    add_section_arguments,
    merge_section_arguments,
    scalar_settings,
)

MODES = ("legacy", "proxy")
#: The release the emulated server reports (health) and compares ``CLIENT-VERSION`` with.
SERVER_VERSION = "26.10"
#: What the proxy reports as its version (it shows the full version; the legacy server major.minor).
PROXY_FULL_VERSION = "26.10.0"
SECTION = "cuopt_server"


def _octal(value: Any) -> int:
    """``"644"``, ``"0o644"`` or an int already meant as octal digits (TOML ``644``) -> 0o644."""
    text = str(value).strip().lower().removeprefix("0o")
    mode = int(text, 8)
    if not 0 <= mode <= 0o777:
        raise ValueError(f"{value!r} is not a file mode (000 to 777)")
    return mode


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


@dataclasses.dataclass(frozen=True)
class CuOptServerConfig:
    port: int | None = None
    port_file: Path | None = None
    mode: str = "legacy"
    data_dir: Path | None = None
    result_dir: Path | None = None
    max_result: int = 250
    result_mode: int = 0o644
    check_client: bool = True
    max_request_bytes: int = 1024**3
    queue_delay: float = 0.0
    max_parallel: int = 2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"cuopt_server mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ConfigError("cuopt_server port must lie in [0, 65535]")
        if self.max_result < 0 or self.max_request_bytes < 1:
            raise ConfigError("cuopt_server max_result must be >= 0 and max_request_bytes >= 1")
        if self.queue_delay < 0 or self.max_parallel < 1:
            raise ConfigError("cuopt_server queue_delay must be >= 0 and max_parallel >= 1")
        for name in ("data_dir", "result_dir"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_dir():
                raise ConfigError(f"cuopt_server {name} {path} is not a directory")

    @property
    def legacy(self) -> bool:
        return self.mode == "legacy"

    @property
    def result_threshold(self) -> int:
        """Encoded results of at least this many bytes go to a file (with ``result_dir``)."""
        return self.max_result * 1000


_SCALARS = {
    "port": int,
    "port_file": Path,
    "mode": str,
    "data_dir": Path,
    "result_dir": Path,
    "max_result": int,
    "result_mode": _octal,
    "check_client": _flag,
    "max_request_bytes": int,
    "queue_delay": float,
    "max_parallel": int,
}
_OPTIONS: tuple[SectionOption, ...] = (
    (
        "--cuopt-server-port",
        "port",
        int,
        "PORT",
        "serve the self-hosted cuOpt API (/cuopt) here; 0: a free port",
    ),
    ("--cuopt-server-port-file", "port_file", str, "FILE", "write the self-hosted cuOpt API's port here"),
    ("--cuopt-server-mode", "mode", str, "MODE", "legacy (default, the container's REST server) or proxy"),
    ("--cuopt-server-data-dir", "data_dir", str, "DIR", "root of CUOPT-DATA-FILE problems (CUOPT_DATA_DIR)"),
    ("--cuopt-server-result-dir", "result_dir", str, "DIR", "write large results here (CUOPT_RESULT_DIR)"),
    ("--cuopt-server-max-result", "max_result", int, "KB", "result-file threshold, KB x 1000 (default 250)"),
    ("--cuopt-server-result-mode", "result_mode", str, "OCTAL", "mode of result files (default 644)"),
    ("--cuopt-server-check-client", "check_client", str, "BOOL", "warn about other client versions (true)"),
    (
        "--cuopt-server-max-request-bytes",
        "max_request_bytes",
        int,
        "BYTES",
        "proxy: larger Content-Length is a 413 (default 1 GiB)",
    ),
    ("--cuopt-server-queue-delay", "queue_delay", float, "SECONDS", "minimum time a job stays queued (0)"),
    ("--cuopt-server-max-parallel", "max_parallel", int, "N", "solver processes at once (default 2)"),
)


def cuopt_server_config_from_mapping(data: Mapping[str, Any] | None) -> CuOptServerConfig:
    """A :class:`CuOptServerConfig` from the config file's ``cuopt_server`` table."""
    return CuOptServerConfig(**scalar_settings(dict(data or {}), _SCALARS, section=SECTION))


def add_cuopt_server_arguments(parser: argparse.ArgumentParser) -> None:
    add_section_arguments(parser, SECTION, _OPTIONS)


def merge_cuopt_server_arguments(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    """Puts the ``--cuopt-server-*`` flags that were given into ``settings["cuopt_server"]``."""
    section = merge_section_arguments(args, settings, SECTION, _OPTIONS)
    if section:
        settings[SECTION] = section
