from __future__ import annotations

import json

import pytest

from airflow_provider.exceptions import CredentialsError, InvalidInputError, ProtocolError
from airflow_provider.protocol import cuopt as proto
from airflow_provider.protocol import cuopt_results


def test_settings_api_key_or_client_credentials():
    s = proto.CuOptSettings.from_connection(None, "nvapi-123", {"function_name": "cuopt"})
    assert (
        s.endpoint == proto.DEFAULT_ENDPOINT and not s.uses_client_credentials and s.function_name == "cuopt"
    )
    s = proto.CuOptSettings.from_connection("127.0.0.1:9", None, {"client_id": "id", "client_secret": "sec"})
    assert (
        s.uses_client_credentials
        and s.endpoint == "https://127.0.0.1:9"
        and s.token_url == proto.DEFAULT_TOKEN_URL
    )


@pytest.mark.parametrize(
    ("password", "extras", "match"),
    [
        (None, {}, "no credentials"),
        (None, {"client_id": "id"}, "no credentials"),
        ("key", {"client_id": "id", "client_secret": "s"}, "exactly one"),
    ],
)
def test_bad_credentials(password, extras, match):
    with pytest.raises(CredentialsError, match=match):
        proto.CuOptSettings.from_connection(None, password, extras)


def test_paths():
    assert proto.exec_path("f 1") == "v2/nvcf/exec/functions/f%201"
    assert proto.exec_path("f", "v") == "v2/nvcf/exec/functions/f/versions/v"
    assert proto.status_path("r") == "v2/nvcf/exec/status/r"
    assert proto.asset_path("a") == "v2/nvcf/assets/a"
    for bad in ("", "..", ".", "a/b", "a\\b", "x\x00", "x" * 201):
        for build in (proto.status_path, proto.asset_path, proto.exec_path):
            with pytest.raises(InvalidInputError):
                build(bad)


@pytest.mark.parametrize("req_id", ["../outside/pwned", "..", "a/b", "\r\nX: y"])
def test_a_hostile_req_id_in_an_answer_is_refused(req_id):
    with pytest.raises(InvalidInputError):
        proto.interpret(200, {"reqId": req_id, "status": "fulfilled", "response": {}})


@pytest.mark.parametrize("reference", [["https://x"], {"url": "x"}, 5])
def test_a_non_string_response_reference_is_a_protocol_error(reference):
    with pytest.raises(ProtocolError, match="responseReference"):
        proto.interpret(200, {"reqId": "r", "status": "fulfilled", "responseReference": reference})


def test_function_entries_of_the_wrong_types_are_ignored():
    funcs = [{"id": "f", "name": ["list"], "status": "ACTIVE", "versionId": "v"}]
    with pytest.raises(InvalidInputError, match="No ACTIVE"):
        proto.select_function(funcs, function_id=None, function_name="cuopt", version_id=None)


FUNCS = [
    {
        "id": "f1",
        "versionId": "v1",
        "name": "cuopt",
        "status": "ACTIVE",
        "createdAt": "2025-01-01T00:00:00.000Z",
    },
    {
        "id": "f1",
        "versionId": "v2",
        "name": "cuopt",
        "status": "ACTIVE",
        "createdAt": "2025-06-01T00:00:00.123Z",
    },
    {
        "id": "f1",
        "versionId": "v3",
        "name": "cuopt",
        "status": "DEPLOYING",
        "createdAt": "2026-01-01T00:00:00.000Z",
    },
    {"id": "f2", "versionId": "w1", "name": "other", "status": "ACTIVE", "createdAt": "2026-01-01T00:00:00Z"},
]


def test_function_selection_like_the_thin_client():
    assert proto.select_function(FUNCS, function_id=None, function_name="cuopt", version_id=None) == (
        "f1",
        "v2",
    )
    assert proto.select_function(FUNCS, function_id="f1", function_name=None, version_id="v1") == ("f1", "v1")
    assert proto.select_function(FUNCS, function_id="f2", function_name="cuopt", version_id=None) == (
        "f2",
        "w1",
    )
    with pytest.raises(InvalidInputError, match="Several"):
        proto.select_function(FUNCS, function_id=None, function_name=None, version_id=None)
    with pytest.raises(InvalidInputError, match="No ACTIVE"):
        proto.select_function(FUNCS, function_id="f1", function_name=None, version_id="v3")


def test_created_at_tolerance():
    assert (
        proto.parse_created_at("2023-08-14T12:16:32.116Z")
        > proto.parse_created_at("2023-08-14T12:16:32Z") - 1
    )
    assert proto.parse_created_at("garbage") == 0.0


def test_invoke_envelope_is_serialised_once_around_the_measured_problem():
    data = proto.serialize_problem({"a": [1, 2], "b": "c"})
    raw = proto.invoke_body(data_json=data, poll_seconds=999)
    assert data in raw and b", " not in raw  # the measured bytes, verbatim and compact
    assert json.loads(raw) == {
        "requestHeader": {"pollDurationSeconds": 300},
        "requestBody": {"data": {"a": [1, 2], "b": "c"}, "client_version": "custom"},
    }
    body = json.loads(proto.invoke_body(asset_id="as1", poll_seconds=10, action="cuOpt_LP"))
    assert body["requestHeader"]["inputAssetReferences"] == ["as1"]
    assert body["requestBody"] == {"data": None, "client_version": "custom", "action": "cuOpt_LP"}


@pytest.mark.parametrize("seconds", [0, 301, 2.5, "x", None])
def test_poll_seconds_rule(seconds):
    with pytest.raises(InvalidInputError, match="poll_seconds"):
        proto.check_poll_seconds(seconds)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(910, 910), ("911", 911), ("²", None), ("9" * 5000, None), (True, None), (1e400, None)],
)
def test_error_codes_are_read_strictly(code, expected):
    assert proto.error_code(code) == expected
    answer = proto.interpret(500, {"reqId": "r1", "status": "errored", "errorCode": code})
    assert answer.error_code == expected


def test_inline_threshold():
    assert proto.needs_asset(250_000) is False and proto.needs_asset(250_001) is True
    with pytest.raises(InvalidInputError, match="at most"):
        proto.needs_asset(5_000_000_001)


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (202, {"reqId": "r", "status": "pending-evaluation"}, proto.InvocationStatus.PENDING_EVALUATION),
        (202, {"reqId": "r", "status": "in-progress"}, proto.InvocationStatus.IN_PROGRESS),
        (200, {"reqId": "r", "status": "fulfilled", "response": {}}, proto.InvocationStatus.FULFILLED),
        (500, {"reqId": "r", "status": "errored", "errorCode": 910}, proto.InvocationStatus.ERRORED),
    ],
)
def test_interpret(status, payload, expected):
    inv = proto.interpret(status, payload)
    assert inv.status is expected and inv.req_id == "r"


def test_interpret_errors_and_references():
    inv = proto.interpret(500, {"reqId": "r", "status": "errored", "errorCode": 910})
    assert "asset" in inv.message and "910" in inv.message
    inv = proto.interpret(200, {"reqId": "r", "status": "fulfilled", "responseReference": "https://x/z.zip"})
    assert inv.response_reference == "https://x/z.zip"
    assert proto.interpret(202, {}, req_id_header="hdr").req_id == "hdr"
    for bad in ({"reqId": "r", "status": "exploded"}, {"status": "fulfilled", "response": {}}, ["x"]):
        with pytest.raises(ProtocolError):
            proto.interpret(200, bad)
    with pytest.raises(ProtocolError, match="neither"):
        proto.interpret(200, {"reqId": "r", "status": "fulfilled"})


ROUTE_OK = {"response": {"solver_response": {"status": 0, "num_vehicles": 1, "vehicle_data": {}}}}
LP_OK = {"response": {"solver_response": {"status": "Optimal", "solution": {"primal_objective": 1}}}}


@pytest.mark.parametrize(
    ("result", "ok"),
    [
        (ROUTE_OK, True),
        (LP_OK, True),
        ({"response": {"solver_response": [LP_OK["response"]["solver_response"]] * 2}}, True),
        ({"response": {"solver_response": {"status": 1, "solution": {}}}}, True),  # older LP integer code
        ({"response": {"solver_infeasible_response": {}}, "notes": ["no route"]}, False),
        ({"response": {"solver_response": {"status": "PrimalInfeasible"}}}, False),
        ({"response": {}}, False),
        ({"error": "bad data", "error_result": True}, False),
        ("not a dict", False),
    ],
)
def test_solver_outcome(result, ok):
    assert cuopt_results.solver_outcome(cuopt_results.summarize_result(result))[0] is ok


def test_is_error_envelope():
    assert proto.is_error_envelope(500, {"reqId": "r", "status": "errored"})
    assert not proto.is_error_envelope(502, {"detail": "bad gateway"})
    assert not proto.is_error_envelope(200, {"reqId": "r", "status": "errored"})
