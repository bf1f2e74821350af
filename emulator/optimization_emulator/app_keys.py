"""Typed keys for what the emulator's core shares with its API modules through the aiohttp app."""

from __future__ import annotations

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
