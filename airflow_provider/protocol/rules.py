"""Task-argument rules shared by every service: one function per rule, one exception type.

Operators call these at construction (a DAG with a nonsensical argument fails to parse, naming the
argument), hooks call the same functions at use (a templated value is checked once rendered), so
there is never a question which copy of a rule is the rule. Every violation is an
:class:`~airflow_provider.exceptions.InvalidInputError` (not retried).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow_provider.exceptions import InvalidInputError


def exactly_one(first: tuple[str, Any], second: tuple[str, Any], hint: str = "") -> None:
    """Exactly one of two arguments (``(name, value)`` pairs) is given."""
    (name_a, a), (name_b, b) = first, second
    if (a is None) == (b is None):
        raise InvalidInputError(
            f"Pass exactly one of {name_a}= or {name_b}={' (' + hint + ')' if hint else ''}."
        )


def timeout_seconds(timeout: float | timedelta | None, default: timedelta, name: str = "timeout") -> float:
    """A positive number of seconds from seconds, a ``timedelta`` or None (``default``)."""
    value = default if timeout is None else timeout
    try:
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be seconds or a timedelta, got {timeout!r}") from None
    if not seconds > 0:
        raise InvalidInputError(f"{name} must be positive, got {timeout!r}")
    return seconds


def poll_settings(poll_interval: float, max_poll_interval: float) -> tuple[float, float]:
    """Poll intervals that make sense (first delay > 0, cap ≥ first delay), as floats."""
    try:
        first, cap = float(poll_interval), float(max_poll_interval)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"poll intervals must be seconds, got {poll_interval!r}, {max_poll_interval!r}"
        ) from None
    if not first > 0:
        raise InvalidInputError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
    if cap < first:
        raise InvalidInputError(
            f"max_poll_interval ({max_poll_interval!r}) must be >= poll_interval ({poll_interval!r})"
        )
    return first, cap


def required(name: str, value: Any, why: str) -> Any:
    """A required argument is set (non-empty)."""
    if value in (None, ""):
        raise InvalidInputError(f"{name} is required: {why}")
    return value
