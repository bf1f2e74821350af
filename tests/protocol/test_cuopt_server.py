"""The self-hosted cuOpt server protocol: connection settings, paths, answer decoding and classification."""

from __future__ import annotations

import json
import zlib

import pytest

from airflow_provider.exceptions import (
    InvalidInputError,
    MalformedResponseError,
    ProtocolError,
    ResponseTooLargeError,
    UnsafeIdentifierError,
)
from airflow_provider.protocol import cuopt_server as proto

JSON_HEADERS = {"Content-Type": "application/json"}


def settings(host="cuopt.internal", port=None, schema=None, password=None, **extras):
    return proto.CuOptServerSettings.from_connection(host, port, schema, password, extras)


@pytest.mark.parametrize(
    ("host", "port", "schema", "url"),
    [
        ("cuopt.internal", 5000, None, "http://cuopt.internal:5000"),
        ("cuopt.internal", None, None, "http://cuopt.internal"),  # Kubernetes service name, no port
        ("https://cuopt.internal", 8443, None, "https://cuopt.internal:8443"),
        ("cuopt.internal", 443, "https", "https://cuopt.internal:443"),
        ("http://10.0.0.5:5000/", 9999, None, "http://10.0.0.5:5000"),  # the host's own port wins
        ("https://gw.example.com/cuopt-prod/", None, None, "https://gw.example.com/cuopt-prod"),
    ],
)
def test_base_url_from_host_port_and_scheme(host, port, schema, url):
    assert settings(host, port, schema).base_url == url
    assert settings(host, port, schema).url("cuopt/health") == f"{url}/cuopt/health"


@pytest.mark.parametrize("host", ["", None, "ftp://cuopt", "http://user:pw@cuopt", "cuopt?x=1"])
def test_unusable_hosts_are_refused(host):
    with pytest.raises(InvalidInputError):
        settings(host)


def test_headers_json_only_client_version_and_gateway_secret():
    plain = settings()
    assert plain.headers() == {"Accept": "application/json", "CLIENT-VERSION": "custom"}
    gated = settings(password="s3cret", auth_header_name="X-API-Key", client_version="26.10.00")
    assert gated.headers() == {
        "Accept": "application/json",
        "CLIENT-VERSION": "26.10.00",
        "X-API-Key": "s3cret",
    }
    assert "s3cret" not in repr(gated)


def test_gateway_header_needs_both_name_and_value():
    with pytest.raises(InvalidInputError, match="auth_header_name"):
        settings(password="s3cret")
    with pytest.raises(InvalidInputError, match="password"):
        settings(auth_header_name="X-API-Key")


def test_tls_settings_from_extras():
    s = settings("https://cuopt", verify_ssl="false", ca_bundle="/ca.pem")
    assert (s.tls.verify, s.tls.ca_bundle) == (False, "/ca.pem")


def test_submit_path_sends_the_clients_flags_and_ids_only_when_set():
    assert proto.submit_path(proto.SubmitOptions()) == (
        "cuopt/request?validation_only=False&cache=False&incumbent_solutions=False&solver_logs=False"
    )
    options = proto.SubmitOptions.of(
        validation_only=True, solver_logs=True, warmstart_id="w-1", initial_ids=["a", "b"]
    )
    assert proto.submit_path(options).endswith("solver_logs=True&warmstartId=w-1&initialId=a&initialId=b")
    assert not options.is_default and proto.SubmitOptions.of().is_default


@pytest.mark.parametrize("bad", ["..", "a/b", "x\n"])
def test_ids_are_checked_before_they_name_a_path(bad):
    with pytest.raises(UnsafeIdentifierError):
        proto.solution_path(bad)
    with pytest.raises(UnsafeIdentifierError):
        proto.SubmitOptions.of(warmstart_id=bad)


def test_paths():
    assert proto.solution_path("r1") == "cuopt/solution/r1"
    assert proto.request_path("r1") == "cuopt/request/r1"
    assert proto.log_path("r1", 42) == "cuopt/log/r1?frombyte=42"
    assert proto.body_headers(True) == {"Content-Type": "application/zlib"}
    assert proto.body_headers(False) == {"Content-Type": "application/json"}


def test_json_and_zlib_answers_are_decoded():
    assert proto.decode_answer(200, {"Content-Type": "application/json; charset=utf-8"}, b'{"a": 1}') == {
        "a": 1
    }
    body = zlib.compress(json.dumps({"reqId": "r"}).encode())
    assert proto.decode_answer(200, {"content-type": "application/zlib"}, body) == {"reqId": "r"}
    assert proto.decode_answer(200, {}, b"") is None  # DELETE solution: empty, no type


@pytest.mark.parametrize("kind", ["application/vnd.msgpack", "application/octet-stream", "text/html", ""])
def test_other_content_types_are_refused_undecoded(kind):
    with pytest.raises(ProtocolError, match="never decoded"):
        proto.decode_answer(200, {"Content-Type": kind} if kind else {}, b"\x81\xa5reqId\xa1r")
    # an error answer of another type is only quoted in the error message, never decoded
    assert proto.decode_answer(502, {"Content-Type": kind}, b"<html>bad gateway</html>") is None


def test_zlib_bomb_and_garbage_are_refused():
    bomb = zlib.compress(b"[" + b"0," * 2_000_000 + b"0]")
    with pytest.raises(ResponseTooLargeError):
        proto.decode_answer(200, {"Content-Type": "application/zlib"}, bomb, cap=1024)
    with pytest.raises(MalformedResponseError):
        proto.decode_answer(200, {"Content-Type": "application/zlib"}, b"not zlib")
    with pytest.raises(MalformedResponseError):
        proto.decode_answer(200, JSON_HEADERS, b'{"truncated": ')


@pytest.mark.parametrize(
    ("status", "payload", "outcome"),
    [
        (400, {"error": "bad", "error_result": True}, True),
        (422, {"error": "bad"}, True),
        (404, {"error": "job r does not exist", "error_result": False}, True),
        (409, {"error": "job r cancelled", "error_result": False}, True),
        (500, {"error": "r was aborted", "error_result": True}, True),
        (500, {"error": "cuOpt is shutting down"}, False),  # transient: retried
        (503, {"error": "x", "error_result": False}, False),
        (429, {"error": "slow down"}, False),
        (404, None, False),  # a gateway's 404 page is not the server's answer
        (200, {"reqId": "r"}, False),
    ],
)
def test_which_error_answers_are_outcomes(status, payload, outcome):
    assert proto.is_outcome(status, payload) is outcome


def test_interpret_solution():
    S = proto.SolutionState
    assert proto.interpret_solution("r", 200, {"reqId": "r"}).pending
    done = proto.interpret_solution("r", 200, {"response": {"solver_response": {}}, "reqId": "r"})
    assert done.status is S.DONE and not done.pending
    assert proto.interpret_solution("r", 200, {"result_file": "f", "format": "json"}).status is S.RESULT_FILE
    failed = proto.interpret_solution("r", 422, {"error": "bad bounds", "error_result": True})
    assert failed.status is S.FAILED and "bad bounds" in failed.message
    assert proto.interpret_solution("r", 404, {"error": "x"}).status is S.GONE
    with pytest.raises(ProtocolError):
        proto.interpret_solution("r", 200, {"reqId": "r", "what": 1})
    with pytest.raises(ProtocolError):
        proto.interpret_solution("r", 200, ["not", "an", "object"])


def test_submitted_id():
    assert proto.submitted_id(200, {"reqId": "abc"}) == "abc"
    with pytest.raises(InvalidInputError, match="refused the problem.*bad matrix"):
        proto.submitted_id(400, {"error": "bad matrix", "error_result": False})
    with pytest.raises(UnsafeIdentifierError):
        proto.submitted_id(200, {"reqId": "../x"})
    with pytest.raises(ProtocolError):
        proto.submitted_id(200, {})


def test_result_file_needs_the_shared_directory_and_stays_inside_it(tmp_path):
    with pytest.raises(InvalidInputError, match="result_dir"):
        proto.result_file_path({"result_file": "r.result", "format": "json"}, None)
    path, fmt = proto.result_file_path(
        {"result_file": "/srv/results/r.result", "format": "zlib"}, str(tmp_path)
    )
    assert (path, fmt) == (tmp_path / "r.result", "zlib")
    with pytest.raises(UnsafeIdentifierError):
        proto.result_file_path({"result_file": "..", "format": "json"}, str(tmp_path))
    with pytest.raises(ProtocolError, match="msgpack"):
        proto.result_file_path({"result_file": "r", "format": "msgpack"}, str(tmp_path))


def test_log_answers_and_tail():
    assert proto.log_lines({"log": ["a", "b"], "nbytes": 4}) == (["a", "b"], 4)
    with pytest.raises(ProtocolError):
        proto.log_lines({"log": "a", "nbytes": 1})
    with pytest.raises(ProtocolError):
        proto.log_lines({"log": [], "nbytes": -1})
    lines = [f"line {i:04d}" for i in range(1000)]
    kept, dropped = proto.log_tail(lines, limit=100)
    assert kept == lines[-10:] and dropped == 990


def test_health_and_validation_rules():
    assert proto.health_message({"status": "RUNNING", "version": "26.10"})[0]
    assert not proto.health_message({"error": "Status : Broken"})[0]
    assert proto.validated_only(["Input is valid"], has_answers=False)
    assert not proto.validated_only(["Input is valid"], has_answers=True)
    assert not proto.validated_only([], has_answers=False)
