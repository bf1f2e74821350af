"""NVCF client-credentials tokens: cache, refresh lead, hostile answers, masking of derived secrets."""

from __future__ import annotations

import pytest

from airflow_provider.exceptions import ProtocolError
from airflow_provider.protocol import nvcf_tokens as proto
from airflow_provider.utils.redact import redact_text


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
    "payload",
    [
        {},
        {"access_token": 3},
        {"access_token": "t", "expires_in": "soon"},
        "x",
        {"access_token": "a\r\nX-Evil: 1", "expires_in": 60},
        {"access_token": "tok", "expires_in": "nan"},
        {"access_token": "tok", "expires_in": 1e400},
    ],
)
def test_bad_token_responses(payload):
    with pytest.raises(ProtocolError):
        proto.Token.from_token_response(payload, now=0)


def test_the_basic_header_value_is_registered_as_a_secret():
    headers = proto.token_request_headers("client-xyz", "secret-value-123")
    basic = headers["Authorization"].removeprefix("Basic ")
    assert basic not in redact_text(f"the gateway echoed Authorization: Basic {basic} back")
    assert "secret-value-123" not in redact_text(f"error: {basic}")
