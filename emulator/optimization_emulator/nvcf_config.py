"""NVCF settings of the emulator: clients, token lifetime, the function catalogue, limits and delays.

They live in ``EmulatorConfig.nvcf``; the config file's ``nvcf`` table and the ``--client``,
``--token-ttl`` and ``--nvcf-*`` flags fill them (command line > file > defaults). Defaults follow
shared/reference/cuopt_nvcf.md §10: a 5 s default poll window (max 300 s), results of 5 MiB or
more as a zip, asset upload URLs valid for 1 h, assets of at most 5 GB, result URLs for 24 h.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from optimization_emulator.settings import (
    ConfigError,
    SectionOption,
    add_section_arguments,
    merge_section_arguments,
    scalar_settings,
)

DEFAULT_CLIENTS = {"emulator-client": "emulator-secret"}
FUNCTION_STATUSES = ("ACTIVE", "DEPLOYING", "ERROR", "INACTIVE", "DEGRADED", "DEGRADING")
#: The id of the default cuOpt function (all default versions share it).
CUOPT_FUNCTION_ID = "0b5c5a5e-c0de-4f0e-9a17-c0a7c0a7c0a7"
#: Default versions: two ACTIVE (the newest is what "latest" resolves to), one INACTIVE, one DEPLOYING.
DEFAULT_FUNCTIONS: tuple[dict[str, Any], ...] = (
    {
        "versionId": "11111111-2411-4000-8000-000000000001",
        "status": "INACTIVE",
        "createdAt": "2024-11-20T09:00:00.000Z",
        "containerImage": "nvcr.io/nvidia/cuopt/cuopt:24.11",
    },
    {
        "versionId": "22222222-2502-4000-8000-000000000002",
        "status": "ACTIVE",
        "createdAt": "2025-03-05T10:30:00.250Z",
        "containerImage": "nvcr.io/nvidia/cuopt/cuopt:25.02",
    },
    {
        "versionId": "33333333-2505-4000-8000-000000000003",
        "status": "ACTIVE",
        "createdAt": "2025-06-01T12:16:32.116Z",
        "containerImage": "nvcr.io/nvidia/cuopt/cuopt:25.05",
    },
    {
        "versionId": "44444444-2508-4000-8000-000000000004",
        "status": "DEPLOYING",
        "createdAt": "2025-08-20T08:00:00.000Z",
        "containerImage": "nvcr.io/nvidia/cuopt/cuopt:25.08",
    },
)
#: FunctionDto fields every listed version has (a config entry may override or add any field).
_DTO_DEFAULTS: dict[str, Any] = {
    "name": "cuopt",
    "ncaId": "emulator-nca-id",
    "inferenceUrl": "/cuopt/cuopt",
    "inferencePort": 8000,
    "apiBodyFormat": "CUSTOM",
    "healthUri": "/v2/health/ready",
    "health": {
        "protocol": "HTTP",
        "uri": "/v2/health/ready",
        "port": 8000,
        "timeout": "PT10S",
        "expectedStatusCode": 200,
    },
    "description": "NVIDIA cuOpt (emulated: HiGHS for LP/MILP, a local-search heuristic for routing)",
    "functionType": "DEFAULT",
    "activeInstances": [],
    "tags": ["emulator"],
}


@dataclasses.dataclass(frozen=True)
class NvcfConfig:
    clients: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_CLIENTS))
    token_ttl: float = 600.0
    functions: tuple[Mapping[str, Any], ...] = ()  # FunctionDto entries; () = the defaults
    poll_seconds: int = 5  # the window when a request names none
    max_poll_seconds: int = 300
    max_request_bytes: int = 4 * 1024 * 1024
    max_inline_result: int = 5 * 1024 * 1024
    queue_delay: float = 0.0
    max_parallel: int = 2
    asset_url_ttl: float = 3600.0
    result_url_ttl: float = 86400.0
    asset_max_bytes: int = 5_000_000_000

    def __post_init__(self) -> None:
        if not self.clients or any(not k or not v or ":" in k for k, v in self.clients.items()):
            raise ConfigError("NVCF clients need a non-empty id (without ':') and secret")
        if min(self.token_ttl, self.asset_url_ttl, self.result_url_ttl) <= 0:
            raise ConfigError("token_ttl, asset_url_ttl and result_url_ttl must be > 0")
        if self.max_parallel < 1 or self.queue_delay < 0:
            raise ConfigError("nvcf max_parallel must be >= 1 and queue_delay >= 0")
        if not 0 <= self.poll_seconds <= self.max_poll_seconds:
            raise ConfigError("nvcf poll_seconds must lie in [0, max_poll_seconds]")
        if min(self.max_request_bytes, self.max_inline_result, self.asset_max_bytes) < 1:
            raise ConfigError("nvcf size limits must be positive")
        object.__setattr__(self, "functions", tuple(_function(e) for e in (self.functions or _defaults())))
        seen = {(f["id"], f["versionId"]) for f in self.functions}
        if len(seen) != len(self.functions):
            raise ConfigError("nvcf functions: each (id, versionId) may appear once")


def _defaults() -> tuple[dict[str, Any], ...]:
    return tuple({"id": CUOPT_FUNCTION_ID, **entry} for entry in DEFAULT_FUNCTIONS)


def _function(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One FunctionDto: the defaults, overridden by ``entry`` (which needs ``id`` and ``versionId``)."""
    if not isinstance(entry, Mapping):
        raise ConfigError("each nvcf function must be a table/object")
    function = {**_DTO_DEFAULTS, "status": "ACTIVE", "createdAt": "2025-01-01T00:00:00.000Z", **entry}
    for key in ("id", "versionId", "name"):
        if not isinstance(function.get(key), str) or not function[key]:
            raise ConfigError(f"nvcf function {dict(entry)}: {key!r} must be a non-empty string")
    if function["status"] not in FUNCTION_STATUSES:
        raise ConfigError(f"nvcf function status must be one of {', '.join(FUNCTION_STATUSES)}")
    try:  # may lack the milliseconds (to test clients against format drift), but must be a timestamp
        dt.datetime.fromisoformat(str(function["createdAt"]))
    except ValueError:
        raise ConfigError(
            f"nvcf function createdAt {function['createdAt']!r} is not an ISO timestamp"
        ) from None
    return function


#: config-file key -> converter, for the scalar settings.
_SCALARS = {
    "token_ttl": float,
    "poll_seconds": int,
    "max_poll_seconds": int,
    "max_request_bytes": int,
    "max_inline_result": int,
    "queue_delay": float,
    "max_parallel": int,
    "asset_url_ttl": float,
    "result_url_ttl": float,
    "asset_max_bytes": int,
}
#: The NVCF flags with a value.
_OPTIONS: tuple[SectionOption, ...] = (
    ("--token-ttl", "token_ttl", float, "SECONDS", "lifetime of issued access tokens (default 600)"),
    (
        "--nvcf-poll-seconds",
        "poll_seconds",
        int,
        "SECONDS",
        "long-poll window when a request names none (default 5; requests may ask for up to 300)",
    ),
    (
        "--nvcf-max-request-bytes",
        "max_request_bytes",
        int,
        "BYTES",
        "largest exec/pexec request body (default 4 MiB; bigger problems go as assets)",
    ),
    (
        "--nvcf-max-inline-result",
        "max_inline_result",
        int,
        "BYTES",
        "results this big or bigger come as a zip behind responseReference (default 5 MiB)",
    ),
    (
        "--nvcf-queue-delay",
        "queue_delay",
        float,
        "SECONDS",
        "minimum time a request stays pending (default 0)",
    ),
    ("--nvcf-max-parallel", "max_parallel", int, "N", "solver processes (default 2)"),
    (
        "--nvcf-asset-url-ttl",
        "asset_url_ttl",
        float,
        "SECONDS",
        "lifetime of asset upload URLs (default 3600)",
    ),
    (
        "--nvcf-result-url-ttl",
        "result_url_ttl",
        float,
        "SECONDS",
        "lifetime of large-result download URLs (default 86400)",
    ),
)


def nvcf_config_from_mapping(data: Mapping[str, Any] | None) -> NvcfConfig:
    """An :class:`NvcfConfig` from the config file's ``nvcf`` table (unknown keys are an error)."""
    data = dict(data or {})
    kwargs = scalar_settings(data, _SCALARS, also_known=("clients", "functions"), section="nvcf")
    clients = data.get("clients")
    if clients is not None:
        if not isinstance(clients, Mapping):
            raise ConfigError("nvcf clients must be a table of client id -> secret")
        kwargs["clients"] = {str(k): str(v) for k, v in clients.items()}
    if data.get("functions") is not None:
        if not isinstance(data["functions"], list) or not data["functions"]:
            raise ConfigError("nvcf functions must be a non-empty list of FunctionDto entries")
        kwargs["functions"] = tuple(data["functions"])
    return NvcfConfig(**kwargs)


def add_nvcf_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client",
        action="append",
        dest="nvcf_clients",
        metavar="ID:SECRET",
        help="client-credentials client for POST /token "
        "(repeatable; default emulator-client:emulator-secret)",
    )
    add_section_arguments(parser, "nvcf", _OPTIONS)


def merge_nvcf_arguments(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    """Puts the NVCF flags that were given into ``settings["nvcf"]`` (the command line wins)."""
    section = merge_section_arguments(args, settings, "nvcf", _OPTIONS)
    if getattr(args, "nvcf_clients", None):
        clients = {}
        for text in args.nvcf_clients:
            client_id, sep, secret = text.partition(":")
            if not sep or not client_id or not secret:
                raise ConfigError(f"--client expects ID:SECRET, got {text!r}")
            clients[client_id] = secret
        section["clients"] = clients
    if section:
        settings["nvcf"] = section
