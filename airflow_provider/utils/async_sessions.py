"""aiohttp sessions shared by every hook on one event loop.

The triggerer runs all triggers in one event loop; a session (and its connection pool) per trigger
would mean a thousand pools and a thousand TLS handshakes for a thousand waits. Hooks instead
acquire a session for their settings from this registry and release it when done; the session is
closed when its last user releases it. Keys include the credentials that sessions carry in their
default headers, so connections with different API keys never share a session.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

T = TypeVar("T")


@dataclass
class _Entry:
    session: aiohttp.ClientSession
    users: int


_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Entry]] = (
    weakref.WeakKeyDictionary()
)


def _entries() -> dict[Hashable, _Entry]:
    loop = asyncio.get_running_loop()
    return _REGISTRY.setdefault(loop, {})


def acquire(key: Hashable, factory: Callable[[], aiohttp.ClientSession]) -> aiohttp.ClientSession:
    """The shared session for ``key`` on the running loop, created by ``factory`` if needed."""
    entries = _entries()
    entry = entries.get(key)
    if entry is None or entry.session.closed:
        entry = entries[key] = _Entry(factory(), 0)
    entry.users += 1
    return entry.session


async def release(key: Hashable) -> None:
    """Give back one use of ``key``'s session; the last user closes it."""
    entries = _entries()
    entry = entries.get(key)
    if entry is None:
        return
    entry.users -= 1
    if entry.users <= 0:
        del entries[key]
        await entry.session.close()


def open_sessions() -> int:
    """How many shared sessions are open on the running loop (for tests and benchmarks)."""
    return sum(not e.session.closed for e in _entries().values())


# ------------------------------------------------------------------------------------ connection settings
_SETTINGS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[Hashable, tuple[float, asyncio.Future]]
] = weakref.WeakKeyDictionary()
SETTINGS_TTL = 60.0


async def cached_settings(key: Hashable, load: Callable[[], Awaitable[T]], ttl: float = SETTINGS_TTL) -> T:
    """Resolve a connection once per ``ttl`` and loop, however many hooks ask at the same time.

    A thousand triggers starting together would otherwise make a thousand connection lookups (each a
    hop to a worker thread, and in a task process a round trip to the API server). Credentials
    changed in Airflow are picked up within ``ttl`` seconds.
    """
    entries = _SETTINGS.setdefault(asyncio.get_running_loop(), {})
    now = time.monotonic()
    entry = entries.get(key)
    if entry is None or entry[0] < now or (entry[1].done() and entry[1].exception() is not None):
        future: asyncio.Future = asyncio.ensure_future(load())
        entries[key] = (now + ttl, future)
        entry = entries[key]
    return await asyncio.shield(entry[1])


# ------------------------------------------------------------------------------------ request limiter
_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def limiter(key: Hashable, permits: int) -> asyncio.Semaphore:
    """One semaphore per loop and key: caps requests in flight so that many waits starting at once
    queue cheaply here instead of all building requests in the same loop iteration."""
    entries = _LIMITERS.setdefault(asyncio.get_running_loop(), {})
    if key not in entries:
        entries[key] = asyncio.Semaphore(permits)
    return entries[key]
