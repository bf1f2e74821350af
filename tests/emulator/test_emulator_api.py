"""The /v1 API over plain HTTP: auth, validation, limits, result retrieval rules, cancel and delete."""

from __future__ import annotations

import json

import pytest
import requests

from optimization_emulator.limits import INLINE_BYTES

RUNS = "/v1/applications/{}/runs"


def test_api_and_admin_need_a_valid_bearer_key(http):
    for headers in (
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {http.emulator.api_key}"},
    ):
        for path in ("/v1/applications", "/v1/applications/knapsack/runs", "/_emulator/stats"):
            response = http.request("GET", path, auth=False, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["error"]
    assert http.request("GET", "/_emulator/health", auth=False).json() == {"status": "ok"}
    assert http.request("GET", "/v1/applications").status_code == 200


def test_unknown_routes_apps_runs_and_instances_are_json_404s(http):
    for path in (
        "/v1/nothing",
        "/v1/applications/nope",
        "/v1/applications/nope/runs/x/metadata",
        "/v1/applications/knapsack/runs/latest-missing",
        "/v1/applications/knapsack/instances/prod",
    ):
        response = http.request("GET", path)
        assert response.status_code == 404, path
        assert "error" in response.json()
    response = http.request(
        "POST", RUNS.format("knapsack"), params={"instance_id": "prod"}, json={"input": {}}
    )
    assert response.status_code == 404 and "prod" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": {}, "options": {"threads": 4}}, "threads"),
        ({"input": {}, "options": ["a"]}, "options"),
        ({"input_id": "managed-1"}, "input_id"),
        ({"input": {"a": 1}, "upload_id": "u"}, "exactly one"),
        ({"name": "nothing to run"}, "exactly one"),
        ({"input": {}, "configuration": {"format": {"input": {"type": "xml"}}}}, "xml"),
        ({"input": {}, "configuration": {"format": {"input": {"type": "multi-file"}}}}, "upload"),
        ({"upload_id": "00000000-0000-0000-0000-000000000000"}, "unknown upload_id"),
    ],
)
def test_bad_new_run_requests_are_400(http, body, message):
    response = http.request("POST", RUNS.format("echo"), json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_body_that_is_not_a_json_object_is_400(http):
    for data in (b"{not json", b"[1, 2]"):
        response = http.request("POST", RUNS.format("echo"), data=data)
        assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_upload_must_be_put_before_it_is_used_and_belongs_to_its_app(http):
    grant = http.request("POST", RUNS.format("echo") + "/uploadurl").json()
    response = http.request("POST", RUNS.format("echo"), json={"upload_id": grant["upload_id"]})
    assert response.status_code == 400 and "PUT" in response.json()["error"]
    assert requests.put(grant["upload_url"], data=b'{"x": 1}', timeout=10).status_code == 200
    other_app = http.request("POST", RUNS.format("knapsack"), json={"upload_id": grant["upload_id"]})
    assert other_app.status_code == 400
    run_id = http.new_run("echo", upload_id=grant["upload_id"])
    assert http.wait("echo", run_id)["metadata"]["status_v2"] == "succeeded"
    assert http.request("GET", RUNS.format("echo") + f"/{run_id}/output").json() == {"x": 1}


def test_inline_input_limit_is_5_mib_measured_like_the_sdk(http):
    exactly = {"s": "x" * (INLINE_BYTES - len('{"s":""}'))}
    run_id = http.new_run("echo", input=exactly)
    assert http.metadata("echo", run_id)["metadata"]["input_size"] == INLINE_BYTES
    over = {"s": "x" * (INLINE_BYTES - len('{"s":""}') + 1)}
    response = http.request("POST", RUNS.format("echo"), json={"input": over})
    assert response.status_code == 413
    assert "upload" in response.json()["error"]
    huge = http.request("POST", RUNS.format("echo"), data=b" " * (INLINE_BYTES + 2 * 1024 * 1024))
    assert huge.status_code == 413 and "upload_id" in huge.json()["error"]
    http.wait("echo", run_id)


def test_metadata_shape_and_options_reach_the_app(http):
    run_id = http.new_run("env", input={}, options={"solve.duration": "2s", "mode": "fast"}, name="n1")
    info = http.wait("env", run_id)
    meta = info["metadata"]
    assert (info["id"], info["name"], meta["status_v2"], meta["status"], meta["error"]) == (
        run_id,
        "n1",
        "succeeded",
        "succeeded",
        "",
    )
    assert meta["format"] == {"input": {"type": "json"}, "output": {"type": "json"}}
    assert meta["run_type"]["type"] == "standard"
    assert meta["options"]["request_options"] == {"solve.duration": "2s", "mode": "fast"}
    assert run_id.startswith("latest-")
    env = http.request("GET", RUNS.format("env") + f"/{run_id}").json()["output"]
    assert json.loads(env["NEXTMV_OPTIONS"]) == {"solve.duration": "2s", "mode": "fast"}
    assert (env["NEXTMV_RUN_ID"], env["NEXTMV_APP_ID"], env["NEXTMV_INSTANCE_ID"]) == (
        run_id,
        "env",
        "latest",
    )
    assert (env["NEXTMV_INPUT_FORMAT"], env["NEXTMV_OUTPUT_FORMAT"]) == ("json", "json")
    assert "NEXTMV_INPUT_DIR" not in env and "NEXTMV_OUTPUT_DIR" not in env


def test_output_over_5_mib_is_only_served_by_url(http):
    run_id = http.new_run("bigjson", input={})
    meta = http.wait("bigjson", run_id)["metadata"]
    assert meta["status_v2"] == "succeeded" and meta["output_size"] > INLINE_BYTES
    for suffix in ("", "/output"):
        refused = http.request("GET", RUNS.format("bigjson") + f"/{run_id}{suffix}")
        assert refused.status_code == 400 and "format=url" in refused.json()["error"]
    url = http.request("GET", RUNS.format("bigjson") + f"/{run_id}", params={"format": "url"}).json()[
        "output"
    ]["url"]
    assert (
        url
        == http.request("GET", RUNS.format("bigjson") + f"/{run_id}/output", params={"format": "url"})
        .json()["url"]
        .split("?")[0]
        + "?"
        + url.split("?")[1]
    )
    download = requests.get(url, timeout=30)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("application/json")
    numbers = download.json()
    assert len(numbers) == 600_000 and numbers[0] == 1234567890


def test_input_is_served_inline_or_by_url(http):
    run_id = http.new_run("echo", input={"hello": "w\u00f6rld"})
    http.wait("echo", run_id)
    assert http.request("GET", RUNS.format("echo") + f"/{run_id}/input").json() == {"hello": "w\u00f6rld"}
    url = http.request("GET", RUNS.format("echo") + f"/{run_id}/input", params={"format": "url"}).json()[
        "url"
    ]
    assert requests.get(url, timeout=10).json() == {"hello": "w\u00f6rld"}


def test_failed_run_has_error_log_and_no_output(http):
    run_id = http.new_run("fail", input={})
    assert http.wait("fail", run_id)["metadata"]["status_v2"] == "failed"
    result = http.request("GET", RUNS.format("fail") + f"/{run_id}").json()
    assert result["metadata"]["status"] == "failed"
    assert "output" not in result
    assert result["error_log"] == {
        "error": result["metadata"]["error"],
        "stdout": "partial",
        "stderr": "first line\nsomething broke: bad things",
    }
    missing = http.request("GET", RUNS.format("fail") + f"/{run_id}/output")
    assert missing.status_code == 404 and "no output" in missing.json()["error"]


def test_output_that_is_not_json_fails_the_run(http):
    run_id = http.new_run("notjson", input={})
    meta = http.wait("notjson", run_id)["metadata"]
    assert meta["status_v2"] == "failed"
    assert "not valid JSON" in meta["error"]


def test_cancel_of_a_finished_run_is_a_no_op_and_delete_removes_it(http):
    run_id = http.new_run("echo", input={"a": 1})
    http.wait("echo", run_id)
    cancel = http.request("PATCH", RUNS.format("echo") + f"/{run_id}/cancel")
    assert cancel.status_code == 200
    assert http.metadata("echo", run_id)["metadata"]["status_v2"] == "succeeded"
    assert http.request("DELETE", RUNS.format("echo") + f"/{run_id}").status_code == 200
    assert http.request("GET", RUNS.format("echo") + f"/{run_id}/metadata").status_code == 404


def test_listings_come_bare_or_paginated(http):
    apps = http.request("GET", "/v1/applications").json()
    assert {"production-planning", "knapsack", "echo"} <= {a["id"] for a in apps}
    page = http.request("GET", "/v1/applications", params={"pagereturn": "true"}).json()
    assert page["next_page_token"] == "" and page["items"] == apps
    instances = http.request(
        "GET", "/v1/applications/knapsack/instances", params={"pagereturn": "true"}
    ).json()
    assert [i["id"] for i in instances["items"]] == ["latest"]
    runs = http.request("GET", RUNS.format("echo"), params={"pagereturn": "true"}).json()
    assert set(runs) == {"runs", "next_page_token"}
    assert set(http.request("GET", RUNS.format("echo")).json()) == {"runs"}


def test_admin_requests_log_and_reset(http, emulator):
    http.request("GET", "/v1/applications/knapsack", params={"x": "1"})
    last = emulator.requests_log(limit=1)
    assert len(last) == 1
    record = emulator.requests_log(limit=2)[0]
    assert record["route"] == "/v1/applications/{app_id}" and record["path"] == "/v1/applications/knapsack"
    assert (record["method"], record["status"], record["authorization"], record["query"]) == (
        "GET",
        200,
        True,
        {"x": "1"},
    )
    run_id = http.new_run("echo", input={})
    assert emulator.stats()["nextmv"]["runs_created_by_app"]["echo"] >= 1
    emulator.reset()
    stats = emulator.stats()["nextmv"]
    assert stats["runs_created"] == 0 and stats["runs_created_by_app"] == {}
    assert [r["path"] for r in emulator.requests_log()] == ["/_emulator/reset", "/_emulator/stats"]
    assert http.wait("echo", run_id)["metadata"]["status_v2"] == "succeeded"  # runs survive a reset
