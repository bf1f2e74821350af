"""Fault rules: their schema, checking, matching and bookkeeping (standard library only).

The config file's ``"faults"`` are checked with :func:`validate_rules` when it is loaded; the admin
endpoint checks posted rules the same way. What the rules *do* is in ``faults.py``; the schema is
documented in docs/emulator.md, "Fault injection".
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from optimization_emulator.settings import ConfigError

ACTIONS = (
    "status",
    "drop",
    "reset_upload",
    "reset_download",
    "delay",
    "expire",
    "malformed",
    "truncate",
    "expire_tokens",
)
#: What each action accepts besides the matching keys (``method``, ``route``, ``path_regex``,
#: ``after``, ``times``).
ACTION_OPTIONS: dict[str, frozenset[str]] = {
    "status": frozenset({"status", "retry_after", "body", "content_type", "process"}),
    "drop": frozenset({"process"}),
    "reset_upload": frozenset({"after_bytes"}),
    "reset_download": frozenset({"after_bytes"}),
    "delay": frozenset({"seconds", "stage", "process", "status", "retry_after", "body", "content_type"}),
    "expire": frozenset(),
    "malformed": frozenset({"status", "body", "content_type", "process"}),
    "truncate": frozenset({"bytes"}),
    "expire_tokens": frozenset(),
}
MATCH_KEYS = frozenset({"action", "method", "route", "path_regex", "after", "times"})
#: Whether the request is handled (before the fault's own answer) when a rule does not say.
PROCESS_DEFAULTS = {"status": False, "drop": True, "delay": True, "malformed": False}
DEFAULT_MALFORMED_BODY = '{"truncated": '
PRESIGNED_PREFIX = "/_presigned/"
MAX_DELAY_SECONDS = 3600.0


class FaultRuleError(ConfigError):
    """A fault rule is malformed (an admin POST answers 400, a config file exits with status 2)."""


def normalize_route(template: str) -> str:
    """``/v1/applications/{app}/runs`` and ``/v1/applications/{app_id}/runs`` are the same route."""
    return re.sub(r"\{[^}]*\}", "{}", template)


def _int(spec: Mapping[str, Any], key: str, default: int | None, minimum: int) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FaultRuleError(f"{key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _number(spec: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultRuleError(f"{key!r} must be a number >= 0, got {value!r}")
    return float(value)


def validate_rule(spec: Any) -> dict[str, Any]:
    """The rule ``spec`` checked and with its defaults filled in (what :class:`FaultRule` takes).

    Raises :class:`FaultRuleError` naming what is wrong."""
    if not isinstance(spec, Mapping):
        raise FaultRuleError(f"a fault rule must be an object, got {spec!r}")
    action = spec.get("action")
    if action not in ACTIONS:
        raise FaultRuleError(f"'action' must be one of {', '.join(ACTIONS)}, got {action!r}")
    unknown = set(spec) - MATCH_KEYS - ACTION_OPTIONS[action]
    if unknown:
        allowed = sorted(MATCH_KEYS | ACTION_OPTIONS[action])
        raise FaultRuleError(f"{action} rule: unknown keys {sorted(unknown)} (allowed: {', '.join(allowed)})")
    rule: dict[str, Any] = {"action": action}
    for key in ("method", "route", "path_regex"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise FaultRuleError(f"{key!r} must be a non-empty string, got {value!r}")
        rule[key] = value
    if rule["method"] is not None:
        rule["method"] = rule["method"].upper()
    if rule["route"] is not None and not rule["route"].startswith("/"):
        raise FaultRuleError(f"'route' must be a route template starting with '/', got {rule['route']!r}")
    if rule["path_regex"] is not None:
        try:
            re.compile(rule["path_regex"])
        except re.error as exc:
            raise FaultRuleError(f"'path_regex' is not a valid regular expression: {exc}") from None
    rule["after"] = _int(spec, "after", 0, 0)
    times = spec.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or (times < 1 and times != -1):
        raise FaultRuleError(f"'times' must be a positive integer or -1 (forever), got {times!r}")
    rule["times"] = times
    if action == "expire" and rule["route"] is not None and not rule["route"].startswith(PRESIGNED_PREFIX):
        raise FaultRuleError(f"expire applies to presigned routes ({PRESIGNED_PREFIX}...) only")
    options = ACTION_OPTIONS[action]
    if "process" in options:
        process = spec.get("process", PROCESS_DEFAULTS[action])
        if not isinstance(process, bool):
            raise FaultRuleError(f"'process' must be true or false, got {process!r}")
        rule["process"] = process
    if "status" in options:
        default = {"status": None, "delay": 504, "malformed": 200}[action]
        status = spec.get("status", default)
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            if action == "status" and status is None:
                raise FaultRuleError("a status rule needs 'status' (an HTTP status, e.g. 503)")
            raise FaultRuleError(f"'status' must be an HTTP status from 200 to 599, got {status!r}")
        rule["status"] = status
    if "retry_after" in options:
        retry_after = spec.get("retry_after")
        if retry_after is not None:
            if (
                isinstance(retry_after, int | float)
                and not isinstance(retry_after, bool)
                and retry_after >= 0
            ):
                retry_after = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            elif not isinstance(retry_after, str) or not retry_after.strip():
                raise FaultRuleError(
                    f"'retry_after' must be seconds (a number >= 0) or an HTTP date, got {retry_after!r}"
                )
        rule["retry_after"] = retry_after
    if "body" in options:
        body = spec.get("body", DEFAULT_MALFORMED_BODY if action == "malformed" else None)
        if body is not None and not isinstance(body, str | dict | list):
            raise FaultRuleError(f"'body' must be a string, an object or a list, got {body!r}")
        rule["body"] = body
        content_type = spec.get("content_type")
        if content_type is not None and (not isinstance(content_type, str) or "/" not in content_type):
            raise FaultRuleError(f"'content_type' must be a media type, got {content_type!r}")
        rule["content_type"] = content_type
    if "after_bytes" in options:
        rule["after_bytes"] = _int(spec, "after_bytes", None, 0)
    if "bytes" in options:
        rule["bytes"] = _int(spec, "bytes", None, 0)
    if action == "delay":
        seconds = _number(spec, "seconds", None)
        if seconds is None or not 0 < seconds <= MAX_DELAY_SECONDS:
            raise FaultRuleError(f"a delay rule needs 'seconds' (0 < seconds <= {MAX_DELAY_SECONDS:.0f})")
        rule["seconds"] = seconds
        stage = spec.get("stage", "request")
        if stage not in ("request", "response"):
            raise FaultRuleError(f"'stage' must be 'request' or 'response', got {stage!r}")
        if stage == "response" and not rule["process"]:
            raise FaultRuleError(
                "stage 'response' delays the answer of a handled request: drop process false"
            )
        rule["stage"] = stage
    return rule


def validate_rules(specs: Any) -> tuple[dict[str, Any], ...]:
    """A list of rules (the config file's ``"faults"``, an admin POST's ``"rules"``), checked."""
    if specs is None:
        return ()
    if not isinstance(specs, list | tuple):
        raise FaultRuleError(f"fault rules must be a list, got {specs!r}")
    checked = []
    for index, spec in enumerate(specs):
        try:
            checked.append(validate_rule(spec))
        except FaultRuleError as exc:
            raise FaultRuleError(f"fault rule #{index + 1}: {exc}") from None
    return tuple(checked)


@dataclasses.dataclass
class FaultRule:
    """One installed rule: its checked spec and how often it matched and fired."""

    id: str
    spec: dict[str, Any]
    matched: int = 0  # matching requests seen, including the `after` skipped ones
    hits: int = 0  # times it fired

    def __post_init__(self) -> None:
        route = self.spec["route"]
        self._route = normalize_route(route) if route is not None else None
        regex = self.spec["path_regex"]
        self._regex = re.compile(regex) if regex is not None else None

    @property
    def action(self) -> str:
        return self.spec["action"]

    @property
    def remaining(self) -> int:
        """Times it will still fire; -1 for a rule that fires forever."""
        times = self.spec["times"]
        return -1 if times == -1 else max(times - self.hits, 0)

    def matches(self, method: str, route: str | None, path: str) -> bool:
        spec = self.spec
        if spec["method"] is not None and spec["method"] != method:
            return False
        if self._route is not None and (route is None or normalize_route(route) != self._route):
            return False
        if self._regex is not None and not self._regex.search(path):
            return False
        return not (self.action == "expire" and not path.startswith(PRESIGNED_PREFIX))

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.spec,
            "remaining": self.remaining,
            "hits": self.hits,
            "matched": self.matched,
        }


class FaultBook:
    """The installed rules, in the order they were added."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, specs: Iterable[dict[str, Any]]) -> list[FaultRule]:
        """Installs already checked specs (see :func:`validate_rules`); returns the new rules."""
        added = [FaultRule(id=f"fault-{next(self._ids)}", spec=dict(spec)) for spec in specs]
        self.rules.extend(added)
        return added

    def clear(self) -> int:
        count = len(self.rules)
        self.rules.clear()
        return count

    def remove(self, rule_id: str) -> bool:
        kept = [rule for rule in self.rules if rule.id != rule_id]
        removed = len(kept) != len(self.rules)
        self.rules = kept
        return removed

    def pick(self, method: str, route: str | None, path: str) -> FaultRule | None:
        """The rule that fires on this request, if any (counting matches and hits as it goes)."""
        for rule in self.rules:
            if rule.remaining == 0 or not rule.matches(method, route, path):
                continue
            rule.matched += 1
            if rule.matched <= rule.spec["after"]:
                continue
            rule.hits += 1
            return rule
        return None
