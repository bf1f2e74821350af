"""Emulator settings: defaults, a config file (JSON, or TOML by extension) and the command line.

Precedence is command line > config file > defaults. Apps merge by id (the command line wins), and the
built-in demo apps are always registered unless a user app takes their id. NVCF settings (the config
file's ``nvcf`` table, ``--client``, ``--token-ttl``, ``--nvcf-*``) are parsed by ``nvcf_config``, those
of the self-hosted cuOpt server (``cuopt_server``, ``--cuopt-server-*``) by ``cuopt_server_config``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from optimization_emulator.cuopt_server_config import (
    CuOptServerConfig,
    add_cuopt_server_arguments,
    cuopt_server_config_from_mapping,
    merge_cuopt_server_arguments,
)
from optimization_emulator.fault_rules import validate_rules
from optimization_emulator.limits import Limits
from optimization_emulator.nvcf_config import (
    NvcfConfig,
    add_nvcf_arguments,
    merge_nvcf_arguments,
    nvcf_config_from_mapping,
)
from optimization_emulator.settings import ConfigError, scalar_settings

DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_PORT = 8765
#: Content formats Nextmv knows (``configuration.format.{input,output}.type``).
FORMATS = ("json", "text", "csv-archive", "multi-file")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Formats whose payload is a tar.gz archive of files.
ARCHIVE_FORMATS = ("csv-archive", "multi-file")


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """A Nextmv application: a shell command the emulator runs once per run."""

    id: str
    command: str
    instances: tuple[str, ...] = ("latest",)
    input_format: str = "json"
    output_format: str = "json"
    name: str = ""
    description: str = ""
    #: A synthetic app the emulator runs itself, without a process (``nextmv_runs.BUILTIN_RUNNERS``);
    #: ``command`` is then only a description.
    builtin: str = ""

    def __post_init__(self) -> None:
        if not self.id or "/" in self.id:
            raise ConfigError(f"invalid app id {self.id!r}")
        if not self.command.strip():
            raise ConfigError(f"app {self.id!r} has an empty command")
        if not self.instances:
            raise ConfigError(f"app {self.id!r} needs at least one instance")
        for fmt in (self.input_format, self.output_format):
            if fmt not in FORMATS:
                raise ConfigError(f"app {self.id!r}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")

    @property
    def default_instance(self) -> str:
        return self.instances[0]


def builtin_apps() -> dict[str, AppSpec]:
    """The apps every emulator has: two demo solvers, run with the emulator's own Python interpreter,
    and the synthetic ``timer``, which the emulator runs itself (thousands of runs, no processes)."""
    python = shlex.quote(sys.executable)
    return {
        "production-planning": AppSpec(
            id="production-planning",
            command=f"{python} -m optimization_emulator.apps.production_planning",
            name="Production planning (HiGHS MILP)",
            description="Integer production quantities that maximize profit within resource capacities.",
        ),
        "knapsack": AppSpec(
            id="knapsack",
            command=f"{python} -m optimization_emulator.apps.knapsack",
            name="0/1 knapsack (HiGHS MILP)",
            description="The most valuable set of items within a weight capacity.",
        ),
        "timer": AppSpec(
            id="timer",
            command="(built in: no process)",
            name="Timer (synthetic, no process)",
            description='Succeeds after {"seconds": S} (input) or the duration option, with a tiny output.',
            builtin="timer",
        ),
    }


@dataclasses.dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    port_file: Path | None = None
    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    apps: dict[str, AppSpec] = dataclasses.field(default_factory=builtin_apps)
    data_dir: Path | None = None
    public_url: str | None = None
    max_parallel_runs: int = 4
    queue_delay: float = 0.0
    presign_ttl: float = 900.0
    log_level: str = "INFO"
    limits: Limits = dataclasses.field(default_factory=Limits)
    nvcf: NvcfConfig = dataclasses.field(default_factory=NvcfConfig)
    #: The self-hosted cuOpt server API (``/cuopt``) on its own port; not served unless a port is set.
    cuopt_server: CuOptServerConfig = dataclasses.field(default_factory=CuOptServerConfig)
    #: Fault rules installed at start-up (checked; see fault_rules.validate_rule).
    faults: tuple[dict[str, Any], ...] = ()
    #: Serve https with this PEM certificate (chain) and key: for testing TLS settings offline.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        if not self.api_keys or not all(self.api_keys):
            raise ConfigError("at least one non-empty API key is required")
        if self.max_parallel_runs < 1:
            raise ConfigError("max_parallel_runs must be at least 1")
        if self.queue_delay < 0 or self.presign_ttl <= 0:
            raise ConfigError("queue_delay must be >= 0 and presign_ttl > 0")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key go together")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


_SCALARS = {
    "host": str,
    "port": int,
    "port_file": Path,
    "data_dir": Path,
    "public_url": str,
    "max_parallel_runs": int,
    "queue_delay": float,
    "presign_ttl": float,
    "log_level": str,
    "tls_cert": Path,
    "tls_key": Path,
}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw settings in ``path``: TOML when it ends in ``.toml``, JSON otherwise."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".toml":
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object/table at the top level")
    return data


def _app_from_mapping(app_id: str, entry: Any) -> AppSpec:
    if isinstance(entry, str):
        return AppSpec(id=app_id, command=entry)
    if not isinstance(entry, Mapping) or "command" not in entry:
        raise ConfigError(f"app {app_id!r} must be a command string or an object with a 'command'")
    formats = entry.get("format") or {}
    unknown = set(entry) - {"command", "instances", "format", "name", "description"}
    if unknown:
        raise ConfigError(f"app {app_id!r}: unknown keys {sorted(unknown)}")
    return AppSpec(
        id=app_id,
        command=str(entry["command"]),
        instances=tuple(str(i) for i in entry.get("instances", ("latest",))),
        input_format=str(formats.get("input", "json")),
        output_format=str(formats.get("output", "json")),
        name=str(entry.get("name", "")),
        description=str(entry.get("description", "")),
    )


def parse_app_argument(text: str) -> AppSpec:
    """``ID=COMMAND`` from ``--app``."""
    app_id, sep, command = text.partition("=")
    if not sep:
        raise ConfigError(f"--app expects ID=COMMAND, got {text!r}")
    return AppSpec(id=app_id.strip(), command=command)


def config_from_mapping(data: Mapping[str, Any]) -> EmulatorConfig:
    """An :class:`EmulatorConfig` from config-file style settings (unknown keys are an error)."""
    kwargs = scalar_settings(
        data, _SCALARS, also_known=("api_keys", "apps", "limits", "nvcf", "cuopt_server", "faults")
    )
    if data.get("api_keys"):
        kwargs["api_keys"] = tuple(str(key) for key in data["api_keys"])
    apps = builtin_apps()
    for app_id, entry in (data.get("apps") or {}).items():
        apps[app_id] = _app_from_mapping(app_id, entry)
    kwargs["apps"] = apps
    try:
        kwargs["limits"] = Limits(**{k: int(v) for k, v in (data.get("limits") or {}).items()})
    except TypeError as exc:
        raise ConfigError(f"limits: {exc}") from exc
    kwargs["nvcf"] = nvcf_config_from_mapping(data.get("nvcf"))
    kwargs["cuopt_server"] = cuopt_server_config_from_mapping(data.get("cuopt_server"))
    kwargs["faults"] = validate_rules(data.get("faults"))
    return EmulatorConfig(**kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optimization_emulator",
        description="Local emulator of the Nextmv Cloud API, of NVIDIA cuOpt on NVCF and of the "
        "self-hosted cuOpt server (see docs/emulator.md).",
    )
    add = parser.add_argument
    add("--host", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, help=f"port to listen on; 0 picks a free one (default {DEFAULT_PORT})")
    add("--port-file", help="write the bound port to this file once listening")
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accepted Bearer API key (repeatable; default {DEFAULT_API_KEY!r})",
    )
    add(
        "--app",
        action="append",
        dest="apps",
        default=[],
        metavar="ID=COMMAND",
        help="register an app whose runs execute COMMAND through /bin/sh (repeatable)",
    )
    add("--config", help="config file, JSON or TOML (by extension); the command line wins over it")
    add("--data-dir", help="keep uploads, inputs and outputs here (default: a temp dir removed on exit)")
    add("--public-url", help="base URL of presigned URLs (default http://HOST:PORT)")
    add("--max-parallel-runs", type=int, help="runs executing at the same time (default 4)")
    add("--queue-delay", type=float, metavar="SECONDS", help="minimum time a run stays queued (default 0)")
    add("--presign-ttl", type=float, metavar="SECONDS", help="lifetime of presigned URLs (default 900)")
    add("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    add("--tls-cert", metavar="PEM", help="serve https with this certificate (chain); needs --tls-key")
    add("--tls-key", metavar="PEM", help="private key of --tls-cert")
    add_nvcf_arguments(parser)
    add_cuopt_server_arguments(parser)
    return parser


def load_config(argv: Sequence[str] | None = None) -> EmulatorConfig:
    """Parses the command line (and the config file it names) into an :class:`EmulatorConfig`."""
    args = build_parser().parse_args(argv)
    settings = read_config_file(args.config) if args.config else {}
    for key in (*_SCALARS, "api_keys"):
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    merge_nvcf_arguments(args, settings)
    merge_cuopt_server_arguments(args, settings)
    config = config_from_mapping(settings)
    for text in args.apps:
        app = parse_app_argument(text)
        config.apps[app.id] = app
    return config
