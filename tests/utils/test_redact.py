from __future__ import annotations

from airflow_provider.utils.redact import redact_text, redact_url

SIGNED = "https://bucket.s3.amazonaws.com/in/x.json?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA"


def test_query_string_and_userinfo_are_removed():
    assert redact_url(SIGNED) == "https://bucket.s3.amazonaws.com/in/x.json?<redacted>"
    assert redact_url("https://user:pw@h:8443/p") == "https://h:8443/p"
    assert redact_url("http://127.0.0.1:9/p") == "http://127.0.0.1:9/p"


def test_urls_inside_messages_are_redacted():
    text = f"HTTPSConnectionPool: Max retries exceeded with url: {SIGNED} (Caused by ...)"
    out = redact_text(text)
    assert "deadbeef" not in out and "AKIA" not in out
    assert "https://bucket.s3.amazonaws.com/in/x.json?<redacted>" in out
