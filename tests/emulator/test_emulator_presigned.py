"""Presigned uploads and downloads: signatures, expiry, the Authorization-header rule and size limits."""

from __future__ import annotations

import json
import shlex
import sys
import time
from http.client import HTTPConnection
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from optimization_emulator.limits import UPLOAD_BYTES
from optimization_emulator.testing.emulator import EmulatorProcess

RUNS = "/v1/applications/{}/runs"


def grant(http, app_id: str = "echo") -> dict:
    response = http.request("POST", RUNS.format(app_id) + "/uploadurl")
    assert response.status_code == 200
    return response.json()


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v is not None}
    return parts._replace(query=urlencode(query)).geturl()


def finished_download_url(http) -> str:
    run_id = http.new_run("echo", input={"k": "v"})
    http.wait("echo", run_id)
    response = http.request("GET", RUNS.format("echo") + f"/{run_id}/output", params={"format": "url"})
    return response.json()["url"]


def test_upload_url_is_absolute_on_the_emulator_and_accepts_a_plain_put(http, emulator):
    url = grant(http)["upload_url"]
    assert url.startswith(emulator.url + "/_presigned/nextmv/uploads/")
    response = requests.put(url, data=b"{}", timeout=10)
    assert (response.status_code, response.content) == (200, b"")


@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_tampered_or_missing_signatures_are_403(http, method):
    url = grant(http)["upload_url"] if method == "PUT" else finished_download_url(http)
    signature = parse_qs(urlsplit(url).query)["X-Signature"][0]
    forged = "0" * len(signature) if signature[0] != "0" else "1" * len(signature)
    later = str(int(parse_qs(urlsplit(url).query)["X-Expires"][0]) + 3600)
    other_path = (
        url.replace("/uploads/", "/uploads/0") if method == "PUT" else url.replace("/output?", "/input?")
    )
    cases = {
        "signature": with_query(url, **{"X-Signature": forged}),
        "expiry": with_query(url, **{"X-Expires": later}),
        "path": other_path,
        "missing": with_query(url, **{"X-Signature": None}),
    }
    for case, bad_url in cases.items():
        response = requests.request(method, bad_url, data=b"{}" if method == "PUT" else None, timeout=10)
        assert response.status_code == 403, case
        assert response.json()["error"], case
    assert "altered" in requests.request(method, cases["signature"], timeout=10).json()["error"]


@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_authorization_header_on_a_presigned_url_is_400(http, emulator, method):
    url = grant(http)["upload_url"] if method == "PUT" else finished_download_url(http)
    response = requests.request(
        method,
        url,
        data=b"{}" if method == "PUT" else None,
        timeout=10,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
    )
    assert response.status_code == 400
    assert "Only one auth mechanism allowed" in response.json()["error"]


def test_upload_over_500_mb_is_refused_from_its_headers(http, emulator):
    before = emulator.stats()["nextmv"]
    upload = grant(http)
    parts = urlsplit(upload["upload_url"])
    connection = HTTPConnection(parts.hostname, parts.port, timeout=10)
    started = time.monotonic()
    connection.putrequest("PUT", f"{parts.path}?{parts.query}")
    connection.putheader("Content-Length", str(UPLOAD_BYTES + 1))
    connection.endheaders(b"x" * 1024)  # the rest of the 500 MB is never sent
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 413
    assert b"EntityTooLarge" in body
    assert time.monotonic() - started < 5
    after = emulator.stats()["nextmv"]
    assert (after["uploads"], after["upload_bytes"]) == (before["uploads"], before["upload_bytes"])
    refused = http.request("POST", RUNS.format("echo"), json={"upload_id": upload["upload_id"]})
    assert refused.status_code == 400 and "no data" in refused.json()["error"]


def test_upload_is_streamed_and_replaces_nothing_until_complete(http, emulator):
    upload = grant(http)
    body = b'{"parts": [' + b",".join(b"%d" % i for i in range(200_000)) + b"]}"

    def stream():
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    response = requests.put(upload["upload_url"], data=stream(), timeout=30)  # chunked transfer encoding
    assert response.status_code == 200
    run_id = http.new_run("echo", upload_id=upload["upload_id"])
    assert http.wait("echo", run_id)["metadata"]["input_size"] == len(body)


# -- an emulator with small limits and a short URL lifetime ----------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    config = tmp_path_factory.mktemp("small") / "emulator.json"
    config.write_text(
        json.dumps(
            {
                "presign_ttl": 2,
                "limits": {"inline_bytes": 1000, "upload_bytes": 100_000, "download_bytes": 5000},
                "apps": {"echo": "cat", "big": f"{shlex.quote(sys.executable)} -c 'print([7] * 3000)'"},
            }
        )
    )
    with EmulatorProcess(extra_args=["--config", str(config)]) as process:
        yield process


@pytest.fixture
def small_http(small, http_client_for):
    return http_client_for(small)


def test_streamed_upload_over_the_limit_is_cut_off_and_not_stored(small_http, small):
    upload = grant(small_http)

    def stream():
        for _ in range(20):
            yield b"x" * 10_000  # 200 kB, chunked: no Content-Length to refuse up front

    response = requests.put(upload["upload_url"], data=stream(), timeout=30)
    assert response.status_code == 413 and "EntityTooLarge" in response.json()["error"]
    assert small.stats()["nextmv"]["uploads"] == 0
    refused = small_http.request("POST", RUNS.format("echo"), json={"upload_id": upload["upload_id"]})
    assert refused.status_code == 400
    exactly = grant(small_http)
    assert requests.put(exactly["upload_url"], data=b"1" * 100_000, timeout=10).status_code == 200


def test_configured_inline_and_download_limits(small_http):
    assert small_http.request("POST", RUNS.format("echo"), json={"input": "x" * 1000}).status_code == 413
    run_id = small_http.new_run("big", input={})
    meta = small_http.wait("big", run_id)["metadata"]
    assert meta["status_v2"] == "failed"
    assert "download limit" in meta["error"] and "exceeds" in meta["error"]


def test_presigned_urls_expire(small_http):
    upload_url = grant(small_http)["upload_url"]
    run_id = small_http.new_run("echo", input={"a": 1})
    small_http.wait("echo", run_id)
    download_url = small_http.request(
        "GET", RUNS.format("echo") + f"/{run_id}/output", params={"format": "url"}
    ).json()["url"]
    assert requests.get(download_url, timeout=10).status_code == 200
    time.sleep(3.1)
    for method, url in (("PUT", upload_url), ("GET", download_url)):
        response = requests.request(method, url, data=b"{}" if method == "PUT" else None, timeout=10)
        assert response.status_code == 403
        assert "expired" in response.json()["error"]
