from __future__ import annotations

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
    with pytest.raises(InvalidInputError):
        proto.status_path("")


def test_token_cache_refreshes_before_expiry():
    cache = proto.TokenCache()
    assert cache.current(0) is None
    cache.store(
        proto.Token.from_token_response({"access_token": "t1", "expires_in": 600}, now=1000), now=1000
    )
    assert cache.current(1000) == "t1"
    assert cache.current(1000 + 600 - 121) == "t1"
    assert cache.current(1000 + 600 - 119) is None  # inside the 120 s lead: refresh before the call
    cache.store(proto.Token.from_token_response({"access_token": "t2", "expires_in": 8}, now=0), now=0)
    assert cache.current(5) == "t2" and cache.current(6.5) is None  # short TTLs: a quarter of the life
    cache.invalidate()
    assert cache.current(0) is None


@pytest.mark.parametrize(
    "payload", [{}, {"access_token": 3}, {"access_token": "t", "expires_in": "soon"}, "x"]
)
def test_bad_token_responses(payload):
    with pytest.raises(ProtocolError):
        proto.Token.from_token_response(payload, now=0)


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


def test_invoke_envelope():
    assert proto.invoke_body(data={"a": 1}, poll_seconds=999) == {
        "requestHeader": {"pollDurationSeconds": 300},
        "requestBody": {"data": {"a": 1}, "client_version": "custom"},
    }
    body = proto.invoke_body(asset_id="as1", poll_seconds=10, action="cuOpt_LP")
    assert body["requestHeader"]["inputAssetReferences"] == ["as1"]
    assert body["requestBody"] == {"data": None, "client_version": "custom", "action": "cuOpt_LP"}


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
