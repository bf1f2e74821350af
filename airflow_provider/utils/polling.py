"""One polling schedule for sync waits, sensors and triggers, so every mode behaves the same.

Exponential backoff from ``initial`` up to ``maximum`` with a little multiplicative jitter, so a
thousand runs started together do not poll in lock-step. Pure functions: easy to test, and the
trigger can recompute its schedule after a triggerer restart from primitives alone.
"""

from __future__ import annotations

import random

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_POLL_INTERVAL = 60.0
BACKOFF_FACTOR = 1.5
JITTER = 0.1


def poll_delay(
    attempt: int,
    initial: float = DEFAULT_POLL_INTERVAL,
    maximum: float = DEFAULT_MAX_POLL_INTERVAL,
    *,
    factor: float = BACKOFF_FACTOR,
    jitter: float = JITTER,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before poll number ``attempt + 1`` (``attempt`` starts at 0).

    ``min(maximum, initial * factor**attempt)``, then scaled by a random factor in
    ``[1 - jitter, 1 + jitter]`` (never above ``maximum * (1 + jitter)``, never negative).
    """
    if initial < 0 or maximum < 0:
        raise ValueError("poll intervals must be >= 0")
    maximum = max(maximum, initial)
    base = initial * (factor ** min(attempt, 64))
    base = min(maximum, base)
    spread = (rng or random).uniform(1.0 - jitter, 1.0 + jitter)
    return max(0.0, base * spread)


def validate_poll_settings(poll_interval: float, max_poll_interval: float) -> None:
    """Fail at DAG-parse time, not mid-run, on nonsensical intervals."""
    if poll_interval <= 0:
        raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
    if max_poll_interval < poll_interval:
        raise ValueError(
            f"max_poll_interval ({max_poll_interval!r}) must be >= poll_interval ({poll_interval!r})"
        )
