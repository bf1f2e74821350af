from __future__ import annotations

import pytest

from airflow_provider.utils.http import TLSSettings, error_detail, parse_retry_after


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("", None), ("7", 7.0), ("-3", 0.0), ("soon", None)]
)
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_error_detail_reads_problem_json_and_nextmv_errors():
    assert error_detail(b'{"type":"x","title":"Unauthorized","status":401,"detail":"token expired"}') == (
        "Unauthorized: token expired"
    )
    assert error_detail('{"error": "app not found"}') == "app not found"
    assert error_detail(b"<html>bad gateway</html>") == "<html>bad gateway</html>"
    assert len(error_detail("x" * 5000)) == 1000


@pytest.mark.parametrize(
    ("extras", "verify"),
    [
        ({}, True),
        ({"verify_ssl": False}, False),
        ({"verify_ssl": "false"}, False),
        ({"ca_bundle": "/ca.pem"}, "/ca.pem"),
    ],
)
def test_tls_settings(extras, verify):
    assert TLSSettings.from_extras(extras).requests_verify == verify
