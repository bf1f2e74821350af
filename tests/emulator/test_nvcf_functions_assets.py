"""NVCF functions list and assets on the emulator: shapes, presigned uploads, decoding by sniffing."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import zlib
from pathlib import Path

import msgpack
import pytest
import requests

from airflow_provider.protocol import cuopt as proto
from optimization_emulator.testing.cuopt import (
    ASSET_HEADERS,
    TINY_LP,
    TINY_ROUTING,
    NvcfClient,
    check_routing,
    pickle_tripwire,
)

CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_functions_list_has_several_versions_of_cuopt(nvcf: NvcfClient) -> None:
    functions = nvcf.functions()
    assert len({f["id"] for f in functions}) == 1 and len({f["versionId"] for f in functions}) >= 3
    assert {"ACTIVE", "INACTIVE"} <= {f["status"] for f in functions}
    for function in functions:
        assert function["name"] == "cuopt"
        assert CREATED_AT.match(function["createdAt"]), function["createdAt"]
        dt.datetime.strptime(function["createdAt"], "%Y-%m-%dT%H:%M:%S.%fZ")  # how the thin client parses it
        for key in (
            "ncaId",
            "inferenceUrl",
            "inferencePort",
            "containerImage",
            "apiBodyFormat",
            "healthUri",
            "description",
            "functionType",
            "activeInstances",
        ):
            assert key in function, key
    fid, vid = proto.select_function(functions, function_id=None, function_name="cuopt", version_id=None)
    newest_active = max((f for f in functions if f["status"] == "ACTIVE"), key=lambda f: f["createdAt"])
    assert (fid, vid) == (newest_active["id"], newest_active["versionId"])
    versions = nvcf.request("GET", f"/v2/nvcf/functions/{fid}/versions")
    assert versions.status_code == 200 and versions.json()["functions"] == functions


def test_invoking_unknown_or_inactive_versions(nvcf: NvcfClient) -> None:
    functions = nvcf.functions()
    fid = functions[0]["id"]
    inactive = next(f["versionId"] for f in functions if f["status"] == "INACTIVE")
    assert nvcf.invoke(TINY_LP, function="no-such-function").status_code == 404
    unknown = nvcf.invoke(TINY_LP, function=fid, version="no-such-version")
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith(
        "application/problem+json"
    )
    refused = nvcf.invoke(TINY_LP, function=fid, version=inactive)
    assert refused.status_code == 400 and "INACTIVE" in refused.json()["detail"]
    active = next(f["versionId"] for f in functions if f["status"] == "ACTIVE")
    assert nvcf.invoke(TINY_LP, function=fid, version=active).json()["status"] == "fulfilled"


def test_functions_come_from_the_config_file(start_emulator) -> None:
    entries = [
        {"id": "f-1", "versionId": "v-old", "name": "cuopt-dev", "createdAt": "2025-01-01T00:00:00.000Z"},
        {
            "id": "f-1",
            "versionId": "v-new",
            "name": "cuopt-dev",
            "createdAt": "2025-02-01T00:00:00Z",
            "status": "DEPLOYING",
        },
    ]
    emulator = start_emulator(config={"nvcf": {"functions": entries}})
    listed = NvcfClient(emulator.url, emulator.api_key).functions()
    assert [(f["versionId"], f["status"], f["createdAt"]) for f in listed] == [
        ("v-old", "ACTIVE", "2025-01-01T00:00:00.000Z"),
        ("v-new", "DEPLOYING", "2025-02-01T00:00:00Z"),
    ]
    assert listed[0]["inferenceUrl"] == "/cuopt/cuopt"


def test_asset_lifecycle(nvcf: NvcfClient, emulator) -> None:
    before = emulator.stats()["nvcf"]
    created = nvcf.create_asset()
    assert set(created) == {"assetId", "uploadUrl", "contentType", "description"}
    assert (
        created["contentType"] == "application/octet-stream" and created["description"] == "Optimization-data"
    )
    asset_id = created["assetId"]
    data = zlib.compress(json.dumps(TINY_LP).encode(), 1)
    put = requests.put(created["uploadUrl"], data=data, headers=ASSET_HEADERS, timeout=10)
    assert put.status_code == 200, put.text
    assert nvcf.request("GET", f"/v2/nvcf/assets/{asset_id}").json() == {
        "asset": {
            "assetId": asset_id,
            "contentType": "application/octet-stream",
            "description": "Optimization-data",
        }
    }
    assert asset_id in [a["assetId"] for a in nvcf.request("GET", "/v2/nvcf/assets").json()["assets"]]
    assert asset_id in emulator.stats()["nvcf"]["assets_live"]

    answer = nvcf.invoke(None, assets=[asset_id])
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"]["response"]["solver_response"]["solution"]["primal_solution"] == [
        1.8,
        0.0,
    ]

    deleted = nvcf.request("DELETE", f"/v2/nvcf/assets/{asset_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert nvcf.request("GET", f"/v2/nvcf/assets/{asset_id}").status_code == 404
    assert nvcf.request("DELETE", f"/v2/nvcf/assets/{asset_id}").status_code == 404
    after = emulator.stats()["nvcf"]
    assert after["assets_created"] == before["assets_created"] + 1
    assert after["assets_deleted"] == before["assets_deleted"] + 1
    assert after["uploads"] == before["uploads"] + 1 and after["upload_bytes"] == before[
        "upload_bytes"
    ] + len(data)
    assert asset_id not in after["assets_live"]
    put_log = [r for r in emulator.requests_log() if r["method"] == "PUT" and asset_id in r["path"]]
    assert (
        put_log
        and put_log[-1]["authorization"] is False
        and put_log[-1]["query"]["X-Signature"] == "<redacted>"
    )


def test_presigned_upload_checks_signed_headers_auth_and_length(nvcf: NvcfClient) -> None:
    url = nvcf.create_asset()["uploadUrl"]
    put = lambda **kw: requests.put(url, timeout=10, **kw)
    assert put(data=b"{}", headers={**ASSET_HEADERS, "Content-Type": "application/json"}).status_code == 403
    assert put(data=b"{}", headers={"Content-Type": "application/octet-stream"}).status_code == 403
    other = {**ASSET_HEADERS, "x-amz-meta-nvcf-asset-description": "something else"}
    assert put(data=b"{}", headers=other).status_code == 403
    with_auth = put(data=b"{}", headers={**ASSET_HEADERS, "Authorization": f"Bearer {nvcf.token}"})
    assert with_auth.status_code == 400 and "Only one auth mechanism" in with_auth.text
    chunked = put(data=iter([b"{", b"}"]), headers=ASSET_HEADERS)
    assert chunked.status_code == 411
    tampered = requests.put(
        url.replace("X-Expires=", "X-Expires=1"), data=b"{}", headers=ASSET_HEADERS, timeout=10
    )
    assert tampered.status_code == 403
    assert put(data=b"{}", headers=ASSET_HEADERS).status_code == 200


def test_upload_url_expires_and_size_is_capped(nvcf_tight: NvcfClient) -> None:
    too_big = nvcf_tight.create_asset()["uploadUrl"]
    response = requests.put(too_big, data=b"x" * 1_000_001, headers=ASSET_HEADERS, timeout=10)
    assert response.status_code == 413
    url = nvcf_tight.create_asset()["uploadUrl"]
    expires = int(re.search(r"X-Expires=(\d+)", url).group(1))
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    expired = requests.put(url, data=b"{}", headers=ASSET_HEADERS, timeout=10)
    assert expired.status_code == 403 and "expired" in expired.text


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda p: zlib.compress(json.dumps(p).encode(), 1), id="zlib-json"),
        pytest.param(lambda p: b"  \n" + json.dumps(p).encode(), id="plain-json"),
        pytest.param(lambda p: msgpack.packb(p), id="msgpack"),
    ],
)
def test_assets_are_decoded_by_sniffing(nvcf: NvcfClient, encode) -> None:
    asset_id = nvcf.upload_asset(encode(TINY_ROUTING))
    answer = nvcf.invoke(None, assets=[asset_id])
    assert answer.status_code == 200, answer.text
    check_routing(TINY_ROUTING, answer.json()["response"]["response"])


@pytest.mark.parametrize("compress", [False, True], ids=["pickle", "zlib-pickle"])
def test_pickle_assets_are_rejected_without_unpickling(
    nvcf: NvcfClient, tmp_path: Path, compress: bool
) -> None:
    marker = tmp_path / "unpickled"
    data = pickle_tripwire(marker)
    asset_id = nvcf.upload_asset(zlib.compress(data) if compress else data)
    answer = nvcf.invoke(None, assets=[asset_id])
    assert answer.status_code == 422, answer.text
    envelope = answer.json()
    assert envelope["status"] == "errored" and envelope["errorCode"] == 422
    assert "pickle" in envelope["errorMessage"] and envelope["detail"] == envelope["errorMessage"]
    assert not marker.exists()


def test_missing_asset_is_error_910(nvcf: NvcfClient) -> None:
    answer = nvcf.invoke(None, assets=["00000000-0000-0000-0000-000000000000"])
    assert answer.status_code == 500
    envelope = answer.json()
    assert envelope["status"] == "errored" and envelope["errorCode"] == 910
    invocation = proto.interpret(answer.status_code, envelope)
    assert invocation.error_code == 910 and "download the input asset" in invocation.message
    never_uploaded = nvcf.create_asset()["assetId"]
    assert nvcf.invoke(None, assets=[never_uploaded]).json()["errorCode"] == 910
