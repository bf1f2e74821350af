"""The shared task-argument rules: one function per rule, one exception type (InvalidInputError)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.protocol import rules


@pytest.mark.parametrize(("p", "m"), [(0, 10), (-1, 10), (10, 5), ("x", 5)])
def test_nonsensical_poll_settings_are_refused(p, m):
    with pytest.raises(InvalidInputError, match="poll"):
        rules.poll_settings(p, m)


def test_poll_settings_come_back_as_floats():
    assert rules.poll_settings(5, "60") == (5.0, 60.0)


def test_exactly_one():
    rules.exactly_one(("input", {}), ("input_uri", None))
    for a, b in (({}, "x"), (None, None)):
        with pytest.raises(InvalidInputError, match="exactly one of input= or input_uri="):
            rules.exactly_one(("input", a), ("input_uri", b))


@pytest.mark.parametrize(("value", "seconds"), [(None, 3600.0), (90, 90.0), (timedelta(minutes=2), 120.0)])
def test_timeout_seconds(value, seconds):
    assert rules.timeout_seconds(value, timedelta(hours=1)) == seconds


@pytest.mark.parametrize("value", [0, -5, timedelta(0), "soon"])
def test_bad_timeouts_are_refused(value):
    with pytest.raises(InvalidInputError, match="timeout"):
        rules.timeout_seconds(value, timedelta(hours=1))


def test_required():
    with pytest.raises(InvalidInputError, match="output_uri is required: because"):
        rules.required("output_uri", "", "because")
