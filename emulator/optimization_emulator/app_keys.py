"""Typed keys for what the emulator's core shares with its API modules through the aiohttp app."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from optimization_emulator.config import EmulatorConfig
from optimization_emulator.signing import UrlSigner
from optimization_emulator.stats import RequestLog, Stats
from optimization_emulator.storage import BlobStore

CONFIG = web.AppKey("config", EmulatorConfig)
SIGNER = web.AppKey("signer", UrlSigner)
STORE = web.AppKey("store", BlobStore)
STATS = web.AppKey("stats", Stats)
REQUEST_LOG = web.AppKey("request_log", RequestLog)
#: Path prefixes whose requests need ``Authorization: Bearer <api key>``; API modules add theirs.
PROTECTED_PREFIXES = web.AppKey("protected_prefixes", list[str])


@dataclasses.dataclass(frozen=True)
class Site:
    """An API served on a port of its own (the self-hosted cuOpt server), beside the main site."""

    name: str
    app: web.Application
    port: int | None  # None: not served; 0: a free port
    port_file: Path | None = None


#: The extra sites ``server.serve`` starts (API modules append theirs).
SITES = web.AppKey("sites", list[Site])
#: An application's default body for an injected error status: ``(status, message) -> (body, type)``
#: (apps without one get ``{"error": ...}`` or problem+json by path; see ``faults``).
FAULT_BODY = web.AppKey("fault_body", Callable[[int, str], tuple[bytes, str]])
