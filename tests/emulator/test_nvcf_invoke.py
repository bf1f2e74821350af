"""NVCF invocations on the emulator: long polling, once-only results, large results, errors, pexec."""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from pathlib import Path

import aiohttp
import pytest
import requests

from airflow_provider.hooks.cuopt_results import store_zip_result
from airflow_provider.protocol import cuopt as proto
from airflow_provider.protocol.cuopt_results import solver_outcome, summarize_result
from optimization_emulator import cuopt
from optimization_emulator.cuopt import generate
from optimization_emulator.testing.cuopt import TINY_LP, TINY_ROUTING, NvcfClient, check_routing


def test_inline_lp_is_fulfilled_within_the_window(nvcf: NvcfClient) -> None:
    started = time.monotonic()
    answer = nvcf.invoke(TINY_LP, poll=30)
    assert answer.status_code == 200 and time.monotonic() - started < 10
    envelope = answer.json()
    assert answer.headers["NVCF-REQID"] == envelope["reqId"] and answer.headers["NVCF-STATUS"] == "fulfilled"
    assert envelope["status"] == "fulfilled" and envelope["percentComplete"] == 100
    body = envelope["response"]
    assert body["warnings"] == [] and body["notes"]
    solution = body["response"]["solver_response"]["solution"]
    assert body["response"]["solver_response"]["status"] == "Optimal"
    assert solution["problem_category"] == "LP"
    assert solution["primal_solution"] == pytest.approx([1.8, 0.0], abs=1e-9)
    assert solution["primal_objective"] == pytest.approx(-0.36, abs=1e-9)
    invocation = proto.interpret(answer.status_code, envelope)
    assert invocation.status is proto.InvocationStatus.FULFILLED and invocation.response == body
    assert solver_outcome(summarize_result(body)) == (True, "")


def test_provider_envelope_with_routing(nvcf: NvcfClient, emulator) -> None:
    before = emulator.stats()["nvcf"]["invocations_by_function"].get(nvcf.function_id(), 0)
    body = proto.invoke_body(
        data_json=proto.serialize_problem(TINY_ROUTING), poll_seconds=20, action="cuOpt_OptimizedRouting"
    )
    answer = nvcf.request(
        "POST",
        "/" + proto.exec_path(nvcf.function_id()),
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    check_routing(TINY_ROUTING, answer.json()["response"]["response"])
    assert emulator.stats()["nvcf"]["invocations_by_function"][nvcf.function_id()] == before + 1


def test_pending_then_polled_to_completion_then_gone(nvcf_tight: NvcfClient) -> None:
    """With a 1 s queue delay: 202 pending-evaluation, 202 again, 200 fulfilled, then 404."""
    first = nvcf_tight.invoke(TINY_LP, poll=0)
    assert first.status_code == 202
    assert first.json() == {"reqId": first.headers["NVCF-REQID"], "status": "pending-evaluation"}
    req_id = first.json()["reqId"]
    assert proto.interpret(202, first.json()).pending
    again = nvcf_tight.status(req_id, poll=0)
    assert again.status_code == 202 and again.json()["status"] == "pending-evaluation"
    started = time.monotonic()
    done = nvcf_tight.status(req_id, poll=30)
    assert done.status_code == 200 and time.monotonic() - started < 5  # answered as the solve ended
    assert done.json()["status"] == "fulfilled" and done.json()["reqId"] == req_id
    gone = nvcf_tight.status(req_id, poll=0)
    assert gone.status_code == 404 and "already delivered" in gone.json()["detail"]


def test_default_window_is_five_seconds_and_limits_are_checked(nvcf_tight: NvcfClient) -> None:
    started = time.monotonic()
    answer = nvcf_tight.invoke(TINY_LP, poll=None)  # no window given: held up to 5 s; solved after ~1 s
    assert answer.status_code == 200 and 0.9 < time.monotonic() - started < 5
    too_long = nvcf_tight.invoke(TINY_LP, poll=301)
    assert too_long.status_code == 400 and "pollDurationSeconds" in too_long.json()["detail"]
    assert nvcf_tight.status("abc", poll=-1).status_code in (400, 404)


def test_result_is_handed_out_once(nvcf: NvcfClient) -> None:
    answer = nvcf.invoke(TINY_LP, poll=30)
    assert answer.status_code == 200
    assert nvcf.status(answer.json()["reqId"]).status_code == 404
    assert nvcf.status("00000000-0000-0000-0000-000000000000").status_code == 404


def test_large_result_comes_as_a_presigned_zip(
    nvcf_tight: NvcfClient, nvcf_tight_emulator, tmp_path: Path
) -> None:
    problem = generate.lp_problem(300, 50, seed=3, names=True)
    answer = nvcf_tight.invoke(problem, poll=30)
    assert answer.status_code == 200, answer.text
    envelope = answer.json()
    assert envelope["status"] == "fulfilled" and "response" not in envelope
    url, req_id = envelope["responseReference"], envelope["reqId"]
    assert url.startswith(nvcf_tight_emulator.url + "/_presigned/nvcf/results/")

    assert (
        requests.get(url, headers={"Authorization": f"Bearer {nvcf_tight.token}"}, timeout=10).status_code
        == 400
    )
    assert requests.get(url.replace("X-Signature=", "X-Signature=0"), timeout=10).status_code == 403
    download = requests.get(url, timeout=10)
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert sorted(archive.namelist()) == sorted(["large_result", f"{req_id}.response"])
        assert json.loads(archive.read(f"{req_id}.response")) == {}
        result = json.loads(archive.read("large_result"))
    assert len(json.dumps(result)) >= 4096
    expected = cuopt.solve(problem)["response"]["solver_response"]
    solution = result["response"]["solver_response"]["solution"]
    assert solution["primal_objective"] == pytest.approx(expected["solution"]["primal_objective"], rel=1e-9)
    assert set(solution["vars"]) == set(problem["variable_names"])

    zip_path = tmp_path / "result.zip"
    zip_path.write_bytes(download.content)
    stored = store_zip_result(zip_path, str(tmp_path / "out") + "/", req_id)  # the provider's reader
    assert stored.ok and json.loads(Path(stored.paths[0]).read_text()) == result
    stats = nvcf_tight_emulator.stats()["nvcf"]
    assert stats["large_results"] >= 1 and stats["downloads"] >= 1
    log = [r for r in nvcf_tight_emulator.requests_log() if r["path"].endswith(f"{req_id}.zip")]
    assert [r["authorization"] for r in log] == [True, False, False]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"data": {**TINY_LP, "surprise": 1}}, 422, "surprise\n  Extra inputs are not permitted"),
        (
            {
                "data": {
                    **TINY_LP,
                    "csr_constraint_matrix": {"offsets": [0, 2], "indices": [0, 1], "values": [1.0, 2.0]},
                }
            },
            400,
            "constraint_bounds",
        ),
        ({"data": {"hello": "world"}}, 422, "cannot tell the problem type"),
        ({"data": TINY_LP, "extra": True}, 422, "extra inputs are not permitted: extra"),
        ({"client_version": "custom"}, 400, "requestBody.data is required"),
        ({"data": TINY_LP, "action": "cuOpt_Nonsense"}, 400, "unknown action"),
    ],
)
def test_bad_problems_are_errored_with_cuopt_messages(
    nvcf: NvcfClient, body, status: int, message: str
) -> None:
    answer = nvcf.invoke(body=body)
    assert answer.status_code == status, answer.text
    envelope = answer.json()
    assert envelope["status"] == "errored" and envelope["errorCode"] == status
    assert message in envelope["errorMessage"] and answer.headers["NVCF-STATUS"] == "errored"
    assert proto.is_error_envelope(answer.status_code, envelope)


def test_bad_envelopes_are_problems(nvcf: NvcfClient, nvcf_tight: NvcfClient) -> None:
    path = f"/v2/nvcf/exec/functions/{nvcf.function_id()}"
    not_json = nvcf.request("POST", path, data=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.headers["Content-Type"].startswith(
        "application/problem+json"
    )
    assert nvcf.request("POST", path, json={"requestHeader": {}}).status_code == 400
    assert (
        nvcf.request(
            "POST", path, json={"requestHeader": {"inputAssetReferences": "x"}, "requestBody": {}}
        ).status_code
        == 400
    )
    too_big = nvcf_tight.invoke(generate.lp_problem(6000, 3000, seed=1))  # ~410 KB of JSON
    assert too_big.status_code == 413 and "asset" in too_big.json()["detail"]


def test_validator_action_only_validates(nvcf: NvcfClient) -> None:
    answer = nvcf.invoke(body={"data": TINY_ROUTING, "action": "cuOpt_RoutingValidator"})
    assert answer.json()["response"]["response"] == {"msg": "Input is Valid"}


async def test_many_concurrent_long_polls_are_cheap_and_answered_once(nvcf_tight: NvcfClient) -> None:
    """1,000 polls wait on one request; exactly one gets the result, the others 404 afterwards."""
    first = nvcf_tight.invoke(TINY_LP, poll=0)
    req_id = first.json()["reqId"]
    headers = {"Authorization": f"Bearer {nvcf_tight.token}", "NVCF-POLL-SECONDS": "20"}
    url = f"{nvcf_tight.base_url}/v2/nvcf/exec/status/{req_id}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def poll() -> int:
            async with session.get(url, headers=headers) as response:
                await response.read()
                return response.status

        started = time.monotonic()
        statuses = await asyncio.gather(*(poll() for _ in range(1000)))
        elapsed = time.monotonic() - started
    assert sorted(set(statuses)) == [200, 404] and statuses.count(200) == 1
    assert elapsed < 8


async def test_many_concurrent_invocations_all_finish(nvcf: NvcfClient) -> None:
    envelope = {"requestHeader": {"pollDurationSeconds": 60}, "requestBody": {"data": TINY_LP}}
    url = f"{nvcf.base_url}/v2/nvcf/exec/functions/{nvcf.function_id()}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def invoke() -> tuple[int, dict]:
            async with session.post(
                url, json=envelope, headers={"Authorization": f"Bearer {nvcf.token}"}
            ) as r:
                return r.status, await r.json()

        answers = await asyncio.gather(*(invoke() for _ in range(100)))
    assert all(status == 200 and body["status"] == "fulfilled" for status, body in answers)
    assert len({body["reqId"] for _, body in answers}) == 100


def test_pexec_passes_bodies_through(nvcf: NvcfClient, nvcf_tight: NvcfClient) -> None:
    path = f"/v2/nvcf/pexec/functions/{nvcf.function_id()}"
    done = nvcf.request("POST", path, json={"data": TINY_ROUTING}, headers={"NVCF-POLL-SECONDS": "20"})
    assert done.status_code == 200 and done.headers["NVCF-STATUS"] == "fulfilled"
    check_routing(TINY_ROUTING, done.json()["response"])
    bad = nvcf.request("POST", path, json={"data": {"nope": 1}})
    assert (
        bad.status_code == 422
        and bad.json()["error_result"] is True
        and bad.headers["NVCF-STATUS"] == "errored"
    )

    tight_path = f"/v2/nvcf/pexec/functions/{nvcf_tight.function_id()}"
    pending = nvcf_tight.request(
        "POST", tight_path, json={"data": TINY_LP}, headers={"NVCF-POLL-SECONDS": "0"}
    )
    assert pending.status_code == 202 and pending.headers["NVCF-STATUS"] == "in-progress"
    status = nvcf_tight.request(
        "GET", f"/v2/nvcf/pexec/status/{pending.headers['NVCF-REQID']}", headers={"NVCF-POLL-SECONDS": "20"}
    )
    assert status.status_code == 200 and status.json()["response"]["solver_response"]["status"] == "Optimal"
    large = nvcf_tight.request(
        "POST",
        tight_path,
        json={"data": generate.lp_problem(300, 50, seed=3, names=True)},
        headers={"NVCF-POLL-SECONDS": "20"},
        allow_redirects=False,
    )
    assert large.status_code == 302 and "/_presigned/nvcf/results/" in large.headers["Location"]
    assert requests.get(large.headers["Location"], timeout=10).status_code == 200
