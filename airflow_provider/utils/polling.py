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


#: The closest two polls of one request ever come, whatever the service answers (seconds).
MIN_POLL_SPACING = 1.0


def early_answer_pause(elapsed: float, window: float, early: int) -> float:
    """Seconds to wait before the next long poll after a *pending* answer that took ``elapsed`` s.

    A long poll that held (about) its ``window`` is followed at once. One that came back early (a
    gateway that does not hold the call, a 202 answered at once) is followed after the rest of the
    window, but no later than a backoff of :data:`MIN_POLL_SPACING` growing ×1.5 per early answer in a
    row (``early``, from 0), so a misbehaving service is polled about once a second at first and
    never in a tight loop.
    """
    if elapsed >= window - 0.5:
        return 0.0
    backoff = poll_delay(early, MIN_POLL_SPACING, max(window, MIN_POLL_SPACING))
    return max(0.0, min(window - elapsed, backoff))
