from __future__ import annotations

import random

from airflow_provider.utils.polling import early_answer_pause, poll_delay


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


def test_a_long_poll_that_held_its_window_is_followed_at_once():
    assert early_answer_pause(29.8, 30, 0) == 0.0


def test_early_pending_answers_are_spaced_with_backoff_never_a_tight_loop():
    pauses = [early_answer_pause(0.001, 30, n) for n in range(12)]
    assert all(p >= 0.9 for p in pauses)  # about a second at first, whatever the service does
    assert pauses[6] > pauses[0] * 5  # and growing
    assert max(pauses) <= 30  # never beyond the window
    # what 5 s of immediate 202s cost now: a handful of polls, not thousands
    polls, clock = 0, 0.0
    while clock < 5:
        clock += early_answer_pause(0.001, 30, polls) + 0.001
        polls += 1
    assert polls <= 5
