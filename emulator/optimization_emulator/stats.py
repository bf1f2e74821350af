"""What the admin endpoints report: counters per emulated API and a log of recent requests.

Tests and users read them to prove *how* a client talked to the service (did the big input take the
upload path? did the presigned PUT carry an Authorization header?) rather than only what came back.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any


class Stats:
    """Integer counters grouped by API (``"nextmv"``, ``"nvcf"``), some keyed (per app, ...), and
    gauges: values read from the API's state when a snapshot is taken (not reset by :meth:`reset`)."""

    def __init__(self) -> None:
        self._declared: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._counters: dict[str, collections.Counter[str]] = {}
        self._keyed: dict[str, dict[str, collections.Counter[str]]] = {}
        self._gauges: dict[str, dict[str, Callable[[], Any]]] = {}

    def declare(
        self,
        api: str,
        counters: tuple[str, ...],
        keyed: tuple[str, ...] = (),
        gauges: Mapping[str, Callable[[], Any]] | None = None,
    ) -> None:
        """Registers an API's counters so that they show (as 0) before anything happens."""
        self._declared[api] = (counters, keyed)
        self._counters.setdefault(api, collections.Counter())
        self._keyed.setdefault(api, {name: collections.Counter() for name in keyed})
        self._gauges[api] = dict(gauges or {})

    def incr(self, api: str, name: str, amount: int = 1) -> None:
        self._counters[api][name] += amount

    def incr_keyed(self, api: str, name: str, key: str, amount: int = 1) -> None:
        self._keyed[api][name][key] += amount

    def snapshot(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for api, (counters, keyed) in self._declared.items():
            group: dict[str, Any] = {name: 0 for name in counters}
            group.update(self._counters[api])
            group.update({name: dict(self._keyed[api][name]) for name in keyed})
            group.update({name: read() for name, read in self._gauges[api].items()})
            result[api] = group
        return result

    def reset(self) -> None:
        for api in self._declared:
            self._counters[api].clear()
            for counter in self._keyed[api].values():
                counter.clear()


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    method: str
    route: str | None  # the route template, e.g. /v1/applications/{app_id}/runs; None when unmatched
    path: str  # without the query string, which may hold a presigned signature
    query: dict[str, str]  # the query parameters, presigned signatures redacted
    status: int | None  # None: the connection was reset before a status line (an injected fault)
    authorization: bool  # whether an Authorization header was sent (never its value)
    content_length: int | None
    time: float
    fault: str | None = None  # the action of an injected fault; only shown when one fired


def _view(record: RequestRecord) -> dict[str, Any]:
    view = dataclasses.asdict(record)
    if view["fault"] is None:
        del view["fault"]
    return view


class RequestLog:
    """The most recent requests, oldest first, bounded in memory."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=maxlen)

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        records = list(self._records)[-limit:] if limit > 0 else []
        return [_view(record) for record in records]

    def clear(self) -> None:
        self._records.clear()
