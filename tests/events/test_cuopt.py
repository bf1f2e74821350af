from __future__ import annotations

import json

import pytest

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus
from airflow_provider.exceptions import ProtocolError


def test_round_trip_is_json_primitives():
    ev = CuOptSolveEvent(SolveEventStatus.SUCCEEDED, "r", "a", ("/o/r.json",), "", True)
    payload = json.loads(json.dumps(ev.to_payload()))
    assert CuOptSolveEvent.from_payload(payload) == ev


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"status": "done", "req_id": "r", "output_paths": []},
        {"status": "failed", "output_paths": []},
        {"status": "succeeded", "req_id": "r", "output_paths": []},  # success must point at a stored result
    ],
)
def test_garbled_events_never_pass(payload):
    with pytest.raises(ProtocolError):
        CuOptSolveEvent.from_payload(payload)


def test_error_code_survives_the_trigger_round_trip():
    from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus

    event = CuOptSolveEvent(SolveEventStatus.FAILED, "r", None, (), "refused", error_code=422)
    assert CuOptSolveEvent.from_payload(event.to_payload()) == event
    garbled = {**event.to_payload(), "error_code": "422"}
    assert CuOptSolveEvent.from_payload(garbled).error_code is None
    older = {k: v for k, v in event.to_payload().items() if k != "error_code"}  # a trigger of before
    assert CuOptSolveEvent.from_payload(older).error_code is None
