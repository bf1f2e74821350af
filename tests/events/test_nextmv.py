from __future__ import annotations

import pytest

from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus, event_from_metadata, timeout_event
from airflow_provider.exceptions import ProtocolError


def test_round_trip():
    ev = NextmvRunEvent(RunEventStatus.FAILED, "app", "r1", "boom")
    assert NextmvRunEvent.from_payload(ev.to_payload()) == ev


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"status": "success", "run_id": "r", "app_id": "a"}, {"status": "succeeded", "run_id": "r"}],
)
def test_lost_or_garbled_events_never_pass_as_success(payload):
    with pytest.raises(ProtocolError):
        NextmvRunEvent.from_payload(payload)


def test_event_from_metadata():
    assert event_from_metadata("a", "r", {"metadata": {"status_v2": "running"}}) is None
    ok = event_from_metadata("a", "r", {"metadata": {"status_v2": "succeeded", "error": ""}})
    assert ok == NextmvRunEvent(RunEventStatus.SUCCEEDED, "a", "r", "")
    failed = event_from_metadata("a", "r", {"metadata": {"status_v2": "failed", "error": "bad input"}})
    assert failed.status is RunEventStatus.FAILED and failed.message == "bad input"
    assert (
        event_from_metadata("a", "r", {"metadata": {"status_v2": "canceled"}}).status
        is RunEventStatus.CANCELED
    )


def test_payload_is_small_and_primitive():
    ev = timeout_event("a", "r", "1h")
    payload = NextmvRunEvent(RunEventStatus.ERROR, "a", "r", "x" * 100_000).to_payload()
    assert len(payload["message"]) <= 4000
    assert all(isinstance(v, str) for v in payload.values())
    assert ev.status is RunEventStatus.TIMEOUT and "1h" in ev.message
