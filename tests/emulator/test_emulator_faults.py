"""Fault injection in the emulator, over real sockets, with real clients (requests, aiohttp, nextmv).

Each test installs rules through the admin endpoint (``EmulatorProcess.add_faults``) and proves both
what the client saw (status, exception, bytes received) and what the emulator did (runs created,
uploads stored, results handed out), because the point of a fault is the gap between the two.

aiohttp's ClientSession retries an idempotent request (GET, PUT, DELETE, ...) once when the connection
is reset before the answer; rules aimed at aiohttp on those methods therefore fire twice.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from nextmv.cloud import Application, Client

from optimization_emulator.cuopt import generate
from optimization_emulator.testing.cuopt import ASSET_HEADERS, TINY_LP, NvcfClient
from optimization_emulator.testing.emulator import EmulatorProcess

RUNS = "/v1/applications/{app_id}/runs"
APP = "/v1/applications/{app_id}"
METADATA = "/v1/applications/{app_id}/runs/{run_id}/metadata"
PAYLOAD = "/v1/applications/{app_id}/runs/{run_id}/{kind}"
UPLOAD = "/_presigned/{api}/uploads/{upload_id}"
DOWNLOAD = "/_presigned/nextmv/runs/{run_id}/{kind}"
ASSET_PUT = "/_presigned/nvcf/assets/{asset_id}"
NVCF_EXEC = "/v2/nvcf/exec/functions/{function_id}"
NVCF_STATUS = "/v2/nvcf/exec/status/{req_id}"
NVCF_RESULT = "/_presigned/nvcf/results/{req_id}.zip"
FUNCTIONS = "/v2/nvcf/functions"
EXPIRED = "the presigned URL has expired; request a new one"

pytestmark = pytest.mark.usefixtures("no_leftover_faults")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults") / "data"


@pytest.fixture(scope="module")
def emu(data_dir: Path) -> Iterator[EmulatorProcess]:
    config = data_dir.parent / "config.json"
    config.write_text(json.dumps({"nvcf": {"max_inline_result": 4096}}))
    with EmulatorProcess(
        apps={"echo": "cat"}, data_dir=data_dir, extra_args=("--config", str(config))
    ) as process:
        yield process
        log = process.log_tail(1_000_000)
    assert "Traceback" not in log and " ERROR " not in log, log  # faults are not server errors


@pytest.fixture
def nvcf(emu: EmulatorProcess) -> NvcfClient:
    return NvcfClient(emu.url, emu.api_key, timeout=30)


def nextmv_stats(emu: EmulatorProcess) -> dict[str, Any]:
    return emu.stats()["nextmv"]


def nvcf_stats(emu: EmulatorProcess) -> dict[str, Any]:
    return emu.stats()["nvcf"]


def last_record(emu: EmulatorProcess, route: str) -> dict[str, Any]:
    records = [r for r in emu.requests_log() if r["route"] == route]
    return records[-1] if records else {}


def run_async(factory: Callable[[aiohttp.ClientSession], Any]) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            return await factory(session)

    return asyncio.run(main())


def finished_echo_run(api, size: int) -> str:
    run_id = api.new_run("echo", input={"x": "y" * size})
    assert api.wait("echo", run_id)["metadata"]["status_v2"] == "succeeded"
    return run_id


def output_url(api, run_id: str) -> str:
    return api.request("GET", f"/v1/applications/echo/runs/{run_id}/output", params={"format": "url"}).json()[
        "url"
    ]


def large_result(nvcf: NvcfClient) -> str:
    """Solves an LP whose result is bigger than the emulator's inline limit; the zip's URL."""
    answer = nvcf.invoke(generate.lp_problem(300, 50, seed=3, names=True), poll=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["responseReference"]


# -- status ------------------------------------------------------------------------------------------


def test_429_with_retry_after_on_a_status_poll(emu, api, nvcf) -> None:
    run_id = api.new_run("echo", input={"a": 1})
    polls = nextmv_stats(emu)["status_polls"]
    [rule_id] = emu.add_faults(
        {"action": "status", "status": 429, "retry_after": 3, "method": "GET", "route": METADATA}
    )
    limited = api.request("GET", f"/v1/applications/echo/runs/{run_id}/metadata")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json() == {"error": "Too Many Requests (a fault injected by the emulator)"}
    assert api.request("GET", f"/v1/applications/echo/runs/{run_id}/metadata").status_code == 200
    assert nextmv_stats(emu)["status_polls"] == polls + 1  # the limited poll was not handled
    assert emu.faults() == [
        {
            "id": rule_id,
            "action": "status",
            "method": "GET",
            "route": METADATA,
            "path_regex": None,
            "after": 0,
            "times": 1,
            "process": False,
            "status": 429,
            "retry_after": "3",
            "body": None,
            "content_type": None,
            "remaining": 0,
            "hits": 1,
            "matched": 1,
        }
    ]
    record = [r for r in emu.requests_log() if r["route"] == METADATA][-2]
    assert record["status"] == 429 and record["fault"] == "status"
    assert "fault" not in last_record(emu, METADATA)

    # NVCF, with aiohttp: problem+json, and the limited poll does not take the once-only result.
    req_id = nvcf.invoke(TINY_LP, poll=0).json()["reqId"]
    emu.add_faults({"action": "status", "status": 429, "retry_after": 1, "route": NVCF_STATUS})

    async def poll(session: aiohttp.ClientSession) -> list[tuple[int, str | None, Any]]:
        answers = []
        for _ in range(2):
            async with session.get(
                f"{nvcf.base_url}/v2/nvcf/exec/status/{req_id}",
                headers={"Authorization": f"Bearer {nvcf.token}", "NVCF-POLL-SECONDS": "30"},
            ) as response:
                body = await response.json(content_type=None)
                answers.append((response.status, response.headers.get("Retry-After"), body))
        return answers

    (status, retry_after, problem), (final, _, envelope) = run_async(poll)
    assert (status, retry_after) == (429, "1")
    assert problem["status"] == 429 and problem["title"] == "Too Many Requests"
    assert final == 200 and envelope["status"] == "fulfilled"


def test_503_before_processing_creates_nothing(emu, api, nvcf) -> None:
    before_runs, before_invocations = nextmv_stats(emu)["runs_created"], nvcf_stats(emu)["invocations"]
    emu.add_faults(
        {"action": "status", "status": 503, "method": "POST", "route": RUNS},
        {"action": "status", "status": 503, "route": NVCF_EXEC},
    )
    refused = api.request("POST", "/v1/applications/echo/runs", json={"input": {"a": 1}})
    assert refused.status_code == 503 and "Service Unavailable" in refused.json()["error"]
    invoke = nvcf.invoke(TINY_LP)
    assert invoke.status_code == 503
    assert invoke.headers["Content-Type"].startswith("application/problem+json")
    assert invoke.json()["status"] == 503
    assert nextmv_stats(emu)["runs_created"] == before_runs
    assert nvcf_stats(emu)["invocations"] == before_invocations
    assert emu.stats()["faults"]["by_action"]["status"] >= 2


def test_500_after_processing_the_run_exists(emu, api, nvcf) -> None:
    before_runs, before_invocations = nextmv_stats(emu)["runs_created"], nvcf_stats(emu)["invocations"]
    listed = len(api.request("GET", "/v1/applications/echo/runs").json()["runs"])
    emu.add_faults(
        {"action": "status", "status": 500, "process": True, "method": "POST", "route": RUNS},
        {
            "action": "status",
            "status": 502,
            "process": True,
            "route": NVCF_EXEC,
            "body": "<html>bad gateway</html>",
        },
    )
    failed = api.request("POST", "/v1/applications/echo/runs", json={"input": {"a": 1}})
    assert failed.status_code == 500 and "run_id" not in failed.text
    assert nextmv_stats(emu)["runs_created"] == before_runs + 1
    assert len(api.request("GET", "/v1/applications/echo/runs").json()["runs"]) == listed + 1
    gateway = nvcf.invoke(TINY_LP)
    assert gateway.status_code == 502 and gateway.text == "<html>bad gateway</html>"
    assert gateway.headers["Content-Type"].startswith("text/plain")
    assert nvcf_stats(emu)["invocations"] == before_invocations + 1


def test_status_on_presigned_routes_is_s3_shaped(emu, api) -> None:
    grant = api.request("POST", "/v1/applications/echo/runs/uploadurl").json()
    emu.add_faults({"action": "status", "status": 503, "retry_after": 1, "route": UPLOAD})
    slow_down = requests.put(grant["upload_url"], data=b'{"a": 1}', timeout=10)
    assert slow_down.status_code == 503 and slow_down.headers["Content-Type"].startswith("application/xml")
    assert "<Code>SlowDown</Code>" in slow_down.text and slow_down.headers["Retry-After"] == "1"
    assert requests.put(grant["upload_url"], data=b'{"a": 1}', timeout=10).status_code == 200


# -- drop -------------------------------------------------------------------------------------------


def test_drop_after_processing_the_run_exists_but_the_answer_is_lost(emu, api) -> None:
    before = nextmv_stats(emu)["runs_created"]
    emu.add_faults({"action": "drop", "method": "POST", "route": RUNS, "times": 2})
    with pytest.raises(requests.ConnectionError):
        api.request("POST", "/v1/applications/echo/runs", json={"input": {"a": 1}})
    assert nextmv_stats(emu)["runs_created"] == before + 1
    record = last_record(emu, RUNS)
    assert record["fault"] == "drop" and record["status"] is None

    async def post(session: aiohttp.ClientSession) -> None:
        async with session.post(
            f"{emu.url}/v1/applications/echo/runs", json={"input": {"a": 2}}, headers=api.headers
        ) as response:
            await response.read()

    with pytest.raises(aiohttp.ClientConnectionError):  # ClientOSError: [Errno 104] Connection reset by peer
        run_async(post)
    assert nextmv_stats(emu)["runs_created"] == before + 2


def test_drop_before_processing_creates_nothing(emu, api) -> None:
    before = nextmv_stats(emu)["runs_created"]
    emu.add_faults({"action": "drop", "process": False, "method": "POST", "route": RUNS})
    with pytest.raises(requests.ConnectionError):
        api.request("POST", "/v1/applications/echo/runs", json={"input": {"a": 1}})
    assert nextmv_stats(emu)["runs_created"] == before


def test_dropped_status_poll_loses_the_once_only_nvcf_result(emu, nvcf) -> None:
    req_id = nvcf.invoke(TINY_LP, poll=0).json()["reqId"]
    emu.add_faults({"action": "drop", "route": NVCF_STATUS})
    with pytest.raises(requests.ConnectionError):
        nvcf.status(req_id, poll=30)
    assert nvcf.status(req_id, poll=0).status_code == 404  # handed out with the lost answer


# -- reset_upload -----------------------------------------------------------------------------------


def test_reset_upload_stores_and_counts_nothing(emu, api, data_dir: Path) -> None:
    grant = api.request("POST", "/v1/applications/echo/runs/uploadurl").json()
    data = json.dumps({"x": "y" * 1_000_000}).encode()
    before = nextmv_stats(emu)
    emu.add_faults({"action": "reset_upload", "after_bytes": 65536, "route": UPLOAD})
    with pytest.raises(requests.ConnectionError):
        requests.put(grant["upload_url"], data=data, timeout=10)
    after = nextmv_stats(emu)
    assert (after["uploads"], after["upload_bytes"]) == (before["uploads"], before["upload_bytes"])
    refused = api.request("POST", "/v1/applications/echo/runs", json={"upload_id": grant["upload_id"]})
    assert refused.status_code == 400 and "has no data" in refused.json()["error"]
    left = [path.name for path in (data_dir / "nextmv" / "uploads").glob(f"*{grant['upload_id']}*")]
    assert left == [], "a reset upload left a (partial) file behind"
    assert last_record(emu, UPLOAD)["fault"] == "reset_upload" and last_record(emu, UPLOAD)["status"] is None

    # The same URL works afterwards, and so does the run.
    assert requests.put(grant["upload_url"], data=data, timeout=10).status_code == 200
    run_id = api.new_run("echo", upload_id=grant["upload_id"])
    assert api.wait("echo", run_id)["metadata"]["input_size"] == len(data)


def test_reset_upload_of_an_nvcf_asset_with_aiohttp(emu, nvcf) -> None:
    asset = nvcf.create_asset()
    before = nvcf_stats(emu)["uploads"]
    emu.add_faults({"action": "reset_upload", "route": ASSET_PUT, "times": 2})  # half of Content-Length

    async def put(session: aiohttp.ClientSession) -> None:
        async with session.put(asset["uploadUrl"], data=b"\0" * 2_000_000, headers=ASSET_HEADERS) as response:
            await response.read()

    with pytest.raises(aiohttp.ClientConnectionError):
        run_async(put)
    assert nvcf_stats(emu)["uploads"] == before
    failed = nvcf.invoke(None, assets=[asset["assetId"]])
    assert failed.status_code == 500 and failed.json()["errorCode"] == 910


# -- reset_download ---------------------------------------------------------------------------------


def test_reset_download_mid_body(emu, api) -> None:
    run_id = finished_echo_run(api, 300_000)
    url = output_url(api, run_id)
    size = 0
    emu.add_faults({"action": "reset_download", "after_bytes": 50_000, "route": DOWNLOAD, "times": 2})
    received = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        response = requests.get(url, stream=True, timeout=10)
        assert response.status_code == 200
        size = int(response.headers["Content-Length"])
        for chunk in response.iter_content(1000):  # a divisor of 50,000: no partial chunk is lost
            received += chunk
    assert size > 300_000 and len(received) == 50_000
    assert last_record(emu, DOWNLOAD)["fault"] == "reset_download"
    assert last_record(emu, DOWNLOAD)["status"] == 200  # the status line was sent

    async def download(session: aiohttp.ClientSession) -> tuple[int, int]:
        got = 0
        async with session.get(url) as response:
            try:
                while chunk := await response.content.readany():
                    got += len(chunk)
            except aiohttp.ClientPayloadError:
                return response.status, got
        raise AssertionError("the download completed")

    assert run_async(download) == (200, 50_000)


def test_reset_download_of_an_inline_output_and_an_nvcf_zip(emu, api, nvcf) -> None:
    run_id = finished_echo_run(api, 100_000)
    emu.add_faults({"action": "reset_download", "route": PAYLOAD})  # half of the body
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.request("GET", f"/v1/applications/echo/runs/{run_id}/output")
    url = large_result(nvcf)
    emu.add_faults({"action": "reset_download", "after_bytes": 1000, "route": NVCF_RESULT})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10)
    with zipfile.ZipFile(io.BytesIO(requests.get(url, timeout=10).content)) as archive:
        assert "large_result" in archive.namelist()  # the zip is still there for a retry


# -- delay ------------------------------------------------------------------------------------------


def test_delay_beyond_the_client_timeout(emu, api) -> None:
    run_id = api.new_run("echo", input={"a": 1})
    polls, runs = nextmv_stats(emu)["status_polls"], nextmv_stats(emu)["runs_created"]
    emu.add_faults(
        {"action": "delay", "seconds": 0.8, "method": "GET", "route": METADATA},
        {"action": "delay", "seconds": 0.8, "stage": "response", "method": "POST", "route": RUNS},
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            f"{emu.url}/v1/applications/echo/runs/{run_id}/metadata", headers=api.headers, timeout=0.2
        )
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{emu.url}/v1/applications/echo/runs", json={"input": {"a": 2}}, headers=api.headers, timeout=0.2
        )
    # stage "response": the run was created at once, only the answer was late.
    assert nextmv_stats(emu)["runs_created"] == runs + 1
    api.wait_until(lambda: last_record(emu, METADATA).get("fault") == "delay", what="the delayed poll ended")
    assert last_record(emu, METADATA)["status"] is None  # the client had gone: not handled
    assert nextmv_stats(emu)["status_polls"] == polls

    emu.add_faults({"action": "delay", "seconds": 0.8, "route": METADATA, "times": 2})

    async def poll(session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> None:
        url = f"{emu.url}/v1/applications/echo/runs/{run_id}/metadata"
        async with session.get(url, headers=api.headers, timeout=timeout) as response:
            await response.read()

    # As the provider's async hooks set it: a read timeout, SocketTimeoutError (a ServerTimeoutError).
    with pytest.raises(aiohttp.ServerTimeoutError):
        run_async(lambda session: poll(session, aiohttp.ClientTimeout(sock_read=0.2)))
    with pytest.raises(asyncio.TimeoutError):
        run_async(lambda session: poll(session, aiohttp.ClientTimeout(total=0.2)))


def test_delay_within_the_client_timeout_and_without_processing(emu, api) -> None:
    run_id = api.new_run("echo", input={"a": 1})
    emu.add_faults({"action": "delay", "seconds": 0.3, "route": METADATA})
    started = time.monotonic()
    assert api.request("GET", f"/v1/applications/echo/runs/{run_id}/metadata").status_code == 200
    assert time.monotonic() - started >= 0.3
    runs = nextmv_stats(emu)["runs_created"]
    emu.add_faults({"action": "delay", "seconds": 0.3, "process": False, "method": "POST", "route": RUNS})
    gateway = api.request("POST", "/v1/applications/echo/runs", json={"input": {"a": 1}})
    assert gateway.status_code == 504 and "Gateway Timeout" in gateway.json()["error"]
    assert nextmv_stats(emu)["runs_created"] == runs


# -- expire -----------------------------------------------------------------------------------------


def test_expire_presigned_put_and_get(emu, api, nvcf) -> None:
    grant = api.request("POST", "/v1/applications/echo/runs/uploadurl").json()
    uploads = nextmv_stats(emu)["uploads"]
    emu.add_faults({"action": "expire", "route": UPLOAD}, {"action": "expire", "route": ASSET_PUT})
    expired = requests.put(grant["upload_url"], data=b'{"a": 1}', timeout=10)
    assert expired.status_code == 403 and expired.json() == {"error": EXPIRED}
    assert nextmv_stats(emu)["uploads"] == uploads
    asset = nvcf.create_asset()
    put = requests.put(asset["uploadUrl"], data=b"{}", headers=ASSET_HEADERS, timeout=10)
    assert put.status_code == 403 and put.json() == {"error": EXPIRED}

    run_id = finished_echo_run(api, 10)
    url = output_url(api, run_id)
    emu.add_faults({"action": "expire", "method": "GET", "path_regex": "^/_presigned/"})
    got = requests.get(url, timeout=10)
    assert got.status_code == 403 and got.json() == {"error": EXPIRED}
    assert requests.get(url, timeout=10).status_code == 200


# -- malformed and truncate -------------------------------------------------------------------------


def test_malformed_answers(emu, api, nvcf) -> None:
    run_id = api.new_run("echo", input={"a": 1})
    emu.add_faults({"action": "malformed", "route": METADATA})
    garbled = api.request("GET", f"/v1/applications/echo/runs/{run_id}/metadata")
    assert garbled.status_code == 200 and garbled.text == '{"truncated": '
    assert garbled.headers["Content-Type"].startswith("application/json")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        garbled.json()

    invocations = nvcf_stats(emu)["invocations"]
    emu.add_faults(
        {"action": "malformed", "process": True, "status": 502, "body": "<html>", "route": NVCF_EXEC}
    )

    async def invoke(session: aiohttp.ClientSession) -> int:
        async with session.post(
            f"{nvcf.base_url}/v2/nvcf/exec/functions/{nvcf.function_id()}",
            json={"requestHeader": {"pollDurationSeconds": 0}, "requestBody": {"data": TINY_LP}},
            headers={"Authorization": f"Bearer {nvcf.token}"},
        ) as response:
            with pytest.raises(json.JSONDecodeError):
                await response.json()
            return response.status

    assert run_async(invoke) == 502
    assert nvcf_stats(emu)["invocations"] == invocations + 1  # processed, then garbled


def test_truncate_json_and_an_nvcf_zip(emu, api, nvcf) -> None:
    run_id = api.new_run("echo", input={"a": 1})
    emu.add_faults({"action": "truncate", "bytes": 40, "route": METADATA})
    cut = api.request("GET", f"/v1/applications/echo/runs/{run_id}/metadata")
    assert cut.status_code == 200 and cut.headers["Content-Length"] == "40" and len(cut.content) == 40
    with pytest.raises(requests.exceptions.JSONDecodeError):
        cut.json()

    url = large_result(nvcf)
    emu.add_faults({"action": "truncate", "route": NVCF_RESULT})  # half of the zip
    truncated = requests.get(url, timeout=10)
    whole = requests.get(url, timeout=10).content
    assert truncated.status_code == 200 and truncated.headers["Content-Type"] == "application/zip"
    assert len(truncated.content) == len(whole) // 2 and whole.startswith(truncated.content)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(truncated.content))
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        assert "large_result" in archive.namelist()


# -- expire_tokens ----------------------------------------------------------------------------------


def test_expire_tokens_mid_run(emu, nvcf) -> None:
    client_id, secret = next(iter(emu.clients.items()))
    token = nvcf.get_token(client_id, secret).json()["access_token"]
    with_token = NvcfClient(emu.url, token)
    assert with_token.request("GET", FUNCTIONS).status_code == 200
    emu.add_faults({"action": "expire_tokens", "method": "GET", "route": FUNCTIONS})
    refused = with_token.request("GET", FUNCTIONS)  # the request that fired it
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("the access token expired")
    assert with_token.request("GET", FUNCTIONS).status_code == 401
    assert last_record(emu, FUNCTIONS)["status"] == 401
    fresh = NvcfClient(emu.url, nvcf.get_token(client_id, secret).json()["access_token"])
    assert fresh.request("GET", FUNCTIONS).status_code == 200
    assert nvcf.request("GET", FUNCTIONS).status_code == 200  # API keys are not tokens


# -- the official SDK -------------------------------------------------------------------------------


def test_official_sdk_sees_the_faults(emu) -> None:
    app = Application(id="echo", client=Client(api_key=emu.api_key, url=emu.url, timeout=0.3))
    runs = nextmv_stats(emu)["runs_created"]
    emu.add_faults({"action": "status", "status": 429, "retry_after": 1, "method": "POST", "route": RUNS})
    with pytest.raises(requests.HTTPError) as info:
        app.new_run(input={"a": 1})
    assert info.value.response.status_code == 429  # over http:// the SDK does not retry
    emu.add_faults({"action": "drop", "method": "POST", "route": RUNS})
    with pytest.raises(requests.ConnectionError):
        app.new_run(input={"a": 1})
    emu.add_faults({"action": "delay", "seconds": 0.8, "stage": "response", "method": "POST", "route": RUNS})
    with pytest.raises(requests.Timeout):
        app.new_run(input={"a": 1})
    assert nextmv_stats(emu)["runs_created"] == runs + 2  # the dropped and the late one exist
    assert app.new_run(input={"a": 1})
