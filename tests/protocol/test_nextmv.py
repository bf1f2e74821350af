from __future__ import annotations

import json

import pytest

from airflow_provider.exceptions import CredentialsError, InvalidInputError, ProtocolError
from airflow_provider.protocol import nextmv as proto


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("api.cloud.nextmv.io", "https://api.cloud.nextmv.io"),
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
        # unlike the SDK (urljoin), a base path survives without a trailing slash
        ("https://proxy.example.com/nextmv", "https://proxy.example.com/nextmv"),
    ],
)
def test_normalize_endpoint(host, expected):
    assert proto.normalize_endpoint(host) == expected


def test_settings_from_connection_and_url_join():
    s = proto.NextmvSettings.from_connection(
        "https://proxy.example.com/nextmv/", "key-123", {"verify_ssl": "false"}
    )
    assert s.url(proto.run_metadata_path("my app", "run:1")) == (
        "https://proxy.example.com/nextmv/v1/applications/my%20app/runs/run%3A1/metadata"
    )
    assert s.tls.verify is False
    assert s.headers["Authorization"] == "Bearer key-123"


def test_settings_default_endpoint_and_tls_on():
    s = proto.NextmvSettings.from_connection(None, "k", {})
    assert s.endpoint == proto.DEFAULT_ENDPOINT
    assert s.tls.verify is True and s.tls.requests_verify is True


@pytest.mark.parametrize("password", [None, "", "   "])
def test_missing_api_key_is_a_clear_error(password):
    with pytest.raises(CredentialsError, match="no API key.*password"):
        proto.NextmvSettings.from_connection("h", password, {})


def test_options_are_stringified_like_the_sdk():
    assert proto.stringify_options({"solve.duration": "1s", "threads": 4, "flag": True, "x": 1.5}) == {
        "solve.duration": "1s",
        "threads": "4",
        "flag": "true",
        "x": "1.5",
    }
    assert proto.stringify_options(None) == {}
    with pytest.raises(InvalidInputError):
        proto.stringify_options(["not", "a", "dict"])
    with pytest.raises(InvalidInputError, match="not JSON-serializable"):
        proto.stringify_options({"o": object()})


def test_run_body_is_serialised_once_and_compactly():
    inline = proto.serialize_json({"a": [1, 2, 3], "b": {"c": "d"}})
    body = proto.run_body(input_json=inline, name="n", options={"threads": 4})
    assert b", " not in body and b": " not in body
    assert body.startswith(b'{"input":' + inline + b",")  # the measured bytes, verbatim
    assert json.loads(body) == {
        "input": {"a": [1, 2, 3], "b": {"c": "d"}},
        "name": "n",
        "options": {"threads": "4"},
        "configuration": {"format": {"input": {"type": "json"}, "output": {"type": "json"}}},
    }
    body = proto.run_body(upload_id="u1", configuration={"execution_class": "6c9500mb870s"})
    assert json.loads(body) == {"upload_id": "u1", "configuration": {"execution_class": "6c9500mb870s"}}
    assert json.loads(proto.run_body(upload_id="u", input_format="multi-file"))["configuration"][
        "format"
    ] == {
        "input": {"type": "multi-file"},
        "output": {"type": "multi-file"},
    }


def test_compact_json_of_a_file_and_its_errors():
    assert proto.compact_json(b'{ "a" : [1, 2] }\n', "f") == b'{"a":[1,2]}'
    with pytest.raises(InvalidInputError, match="f is not valid JSON"):
        proto.compact_json(b"a,b\n1,2", "f")


def test_transfer_threshold_is_exactly_5_mib():
    assert proto.choose_transfer(5 * 1024 * 1024) is proto.Transfer.INLINE
    assert proto.choose_transfer(5 * 1024 * 1024 + 1) is proto.Transfer.UPLOAD
    # non-JSON inputs always upload, as in the SDK
    assert proto.choose_transfer(3, "text") is proto.Transfer.UPLOAD


def test_inputs_over_500_mb_are_refused():
    assert proto.choose_transfer(500_000_000) is proto.Transfer.UPLOAD
    with pytest.raises(InvalidInputError, match="500,000,001 bytes.*at most 500,000,000"):
        proto.choose_transfer(500_000_001)


def test_unknown_input_format():
    with pytest.raises(InvalidInputError, match="input_format"):
        proto.choose_transfer(1, "xml")


def test_serialize_json_is_compact_ascii():
    assert proto.serialize_json({"a": [1, 2], "b": "é"}) == b'{"a":[1,2],"b":"\\u00e9"}'
    with pytest.raises(InvalidInputError):
        proto.serialize_json({"x": {1, 2}})


def _meta(**meta):
    return {"id": "r", "metadata": meta}


@pytest.mark.parametrize(
    ("meta", "status"),
    [
        (dict(status_v2="queued"), proto.RunStatus.QUEUED),
        (dict(status_v2="running", status="running"), proto.RunStatus.RUNNING),
        (dict(status_v2="succeeded"), proto.RunStatus.SUCCEEDED),
        (dict(status_v2="failed"), proto.RunStatus.FAILED),
        (dict(status_v2="canceled", status="failed"), proto.RunStatus.CANCELED),
        (dict(status="succeeded"), proto.RunStatus.SUCCEEDED),  # legacy v1 only
    ],
)
def test_run_status_mapping(meta, status):
    assert proto.run_status(_meta(**meta)) is status


@pytest.mark.parametrize("bad", [_meta(status_v2="exploded"), _meta(), {"metadata": None}, {}])
def test_unknown_status_is_an_error_never_success(bad):
    with pytest.raises(ProtocolError):
        proto.run_status(bad)


def test_terminal_states():
    assert {s for s in proto.RunStatus if s.is_terminal} == {
        proto.RunStatus.SUCCEEDED,
        proto.RunStatus.FAILED,
        proto.RunStatus.CANCELED,
    }


def test_run_error_message_combines_error_and_log():
    payload = {"metadata": {"error": "app exited with 3"}, "error_log": {"stderr": "infeasible model"}}
    assert proto.run_error_message(payload) == "app exited with 3\ninfeasible model"
    assert "no error message" in proto.run_error_message({"metadata": {"error": ""}})


@pytest.mark.parametrize(
    ("fmt", "size", "via_url", "archive"),
    [("json", 100, False, False), ("json", 5 * 1024 * 1024 + 1, True, False), ("multi-file", 10, True, True)],
)
def test_output_info(fmt, size, via_url, archive):
    info = proto.output_info({"metadata": {"format": {"output": {"type": fmt}}, "output_size": float(size)}})
    assert (info.via_url, info.is_archive) == (via_url, archive)


def test_console_url():
    assert proto.console_run_url("https://cloud.nextmv.io/", "app", "r1") == (
        "https://cloud.nextmv.io/app/app/run/r1?view=details"
    )


def test_malformed_json_and_missing_keys():
    with pytest.raises(ProtocolError, match="malformed JSON"):
        proto.parse_json_body(b'{"run_id": ', "new run")
    with pytest.raises(ProtocolError, match="no 'run_id'"):
        proto.require_str(json.loads('{"id": "x"}'), "run_id", "new run")


@pytest.mark.parametrize("bad", ["", "  ", ".", "..", "a/b", "a\\b", "x\x00", "cr\r\nlf", "x" * 201])
def test_unsafe_ids_are_rejected_by_every_path_builder(bad):
    with pytest.raises(InvalidInputError):
        proto.app_path(bad)
    with pytest.raises(InvalidInputError):
        proto.run_path("app", bad)
    with pytest.raises(InvalidInputError):
        proto.console_run_url("https://c", "app", bad)
