from __future__ import annotations

import random

import pytest

from airflow_provider.utils.polling import poll_delay, validate_poll_settings


def test_backoff_grows_then_caps_with_jitter():
    rng = random.Random(1)
    delays = [poll_delay(i, 2.0, 30.0, rng=rng) for i in range(20)]
    assert 1.8 <= delays[0] <= 2.2
    assert delays[3] > delays[0]
    assert all(d <= 33.0 for d in delays)
    assert all(d >= 27.0 for d in delays[10:])


def test_no_jitter_is_exact_and_huge_attempts_do_not_overflow():
    assert [poll_delay(i, 1.0, 10.0, jitter=0) for i in range(4)] == [1.0, 1.5, 2.25, 3.375]
    assert poll_delay(10**9, 1.0, 10.0, jitter=0) == 10.0


def test_jitter_spreads_triggers_started_together():
    delays = {round(poll_delay(0, 5.0, 60.0), 6) for _ in range(50)}
    assert len(delays) > 40


@pytest.mark.parametrize(("p", "m"), [(0, 10), (-1, 10), (10, 5)])
def test_invalid_settings(p, m):
    with pytest.raises(ValueError):
        validate_poll_settings(p, m)
