"""The emulator's self-hosted cuOpt server API (``/cuopt``) over raw HTTP, against
shared/reference/cuopt_selfhosted.md: exact Content-Types, the pending / done / error shapes and
their HTTP codes, status strings, abort and delete, logs with ``frombyte``, the incumbents sentinel,
result files, health, the request bodies read (JSON, zlib-JSON, msgpack with numeric msgpack-numpy
arrays) and the ones refused (pickle in both forms), fault rules on these routes, and where the gRPC
proxy differs from the legacy server. ``test_cuopt_server_conformance`` runs the official client.
"""

from __future__ import annotations

import json
import pickle
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import requests

from optimization_emulator.cuopt.decode import PICKLE_REFUSED
from optimization_emulator.cuopt.generate import lp_problem, market_split_problem
from optimization_emulator.testing.cuopt import TINY_LP, CuOptServerClient
from optimization_emulator.testing.emulator import EmulatorProcess

JSON, MSGPACK, ZLIB = "application/json", "application/vnd.msgpack", "application/zlib"
SENTINEL = [{"solution": [], "cost": None, "bound": None}]
MISSING_ID = "00000000-0000-4000-8000-000000000000"
#: What msgpack-numpy sends for ``np.array(["C", "C"], dtype=object)``: its data is a pickle.
OBJECT_ARRAY = {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [2], b"data": pickle.dumps(["C", "C"])}
BAD_LP = {**TINY_LP, "variable_bounds": {"upper_bounds": [1.0], "lower_bounds": [0.0, 0.0]}}


def decode(response: requests.Response) -> Any:
    """An answer by its Content-Type, which must be exactly one of the three (no parameters)."""
    kind = response.headers.get("Content-Type")
    assert kind in (JSON, MSGPACK, ZLIB), f"{kind!r} for {response.request.method} {response.url}"
    if kind == MSGPACK:
        return msgpack.unpackb(response.content)
    return json.loads(zlib.decompress(response.content) if kind == ZLIB else response.content)


def numpy_map(values: list[Any], dtype: str) -> dict[bytes, Any]:
    """What ``msgpack_numpy.patch()`` sends for ``np.array(values, dtype)`` (as the sh client does)."""
    array = np.asarray(values, dtype=dtype)
    return {
        b"nd": True,
        b"type": array.dtype.str,
        b"kind": b"",
        b"shape": list(array.shape),
        b"data": array.tobytes(),
    }


def long_milp(seconds: float = 30) -> dict[str, Any]:
    return market_split_problem(time_limit=seconds)


@pytest.fixture
def legacy(cuopt_server_emulator: EmulatorProcess) -> Iterator[CuOptServerClient]:
    yield CuOptServerClient(cuopt_server_emulator.cuopt_server_url)
    cuopt_server_emulator.clear_faults()  # the emulator is shared with the conformance tests


@pytest.fixture(scope="module")
def proxy_result_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy-results")


@pytest.fixture(scope="module")
def proxy_emulator(proxy_result_dir: Path) -> Iterator[EmulatorProcess]:
    """The gRPC proxy's behaviour, with results of 1 KB or more written to a result directory."""
    args = ("--cuopt-server-mode", "proxy", "--cuopt-server-result-dir", str(proxy_result_dir))
    with EmulatorProcess(extra_args=(*args, "--cuopt-server-max-result", "1")) as process:
        yield process


@pytest.fixture
def proxy(proxy_emulator: EmulatorProcess) -> CuOptServerClient:
    return CuOptServerClient(proxy_emulator.cuopt_server_url)


# -- both servers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/cuopt/health", "/v2/health/ready", "/v2/health/live"])
def test_health_endpoints(legacy: CuOptServerClient, proxy: CuOptServerClient, path: str) -> None:
    assert decode(legacy.request("GET", path)) == {"status": "RUNNING", "version": "26.10"}
    assert decode(proxy.request("GET", path)) == {"status": "RUNNING", "version": "26.10.0"}


@pytest.mark.parametrize("mime", [JSON, MSGPACK, ZLIB])
def test_every_answer_in_the_accepted_type_exactly(legacy: CuOptServerClient, mime: str) -> None:
    headers = {"Accept": mime}
    submitted = legacy.submit(TINY_LP, params={"solver_logs": "True"}, headers=headers)
    req_id = decode(submitted)["reqId"]
    assert submitted.headers["Content-Type"] == mime
    while (done := legacy.solution(req_id, headers=headers)).status_code == 200 and decode(done) == {
        "reqId": req_id
    }:
        time.sleep(0.02)
    envelope = decode(done)
    assert done.status_code == 200 and done.headers["Content-Type"] == mime
    assert {"response", "reqId"} <= set(envelope) <= {"response", "reqId", "warnings", "notes"}
    assert all(envelope[key] for key in ("warnings", "notes") if key in envelope)  # only when non-empty
    answer = envelope["response"]["solver_response"]
    assert answer["status"] == "Optimal"
    assert answer["solution"]["primal_solution"] == pytest.approx([1.8, 0.0], abs=1e-6)
    for response, expected in [
        (legacy.status(req_id, headers=headers), "completed"),
        (legacy.incumbents(req_id, headers=headers), SENTINEL),
        (legacy.abort(req_id, headers=headers), {"queued": 0, "running": 0, "cached": 0}),
    ]:
        assert response.status_code == 200 and response.headers["Content-Type"] == mime
        assert decode(response) == expected
    log = legacy.log(req_id, headers=headers)
    assert log.headers["Content-Type"] == mime and any("HiGHS" in line for line in decode(log)["log"])
    deleted = legacy.delete(req_id, headers=headers)
    assert deleted.status_code == 200 and deleted.content == b"" and "Content-Type" not in deleted.headers
    for response in (legacy.solution(req_id, headers=headers), legacy.status(req_id, headers=headers)):
        assert response.status_code == 404 and response.headers["Content-Type"] == mime
        assert decode(response) == {"error": f"job {req_id} does not exist", "error_result": False}


def test_wildcard_and_missing_accept(legacy: CuOptServerClient) -> None:
    wildcard = {"Accept": "*/*", "Content-Type": MSGPACK}
    submitted = legacy.submit(data=msgpack.packb(TINY_LP), headers=wildcard)
    assert submitted.headers["Content-Type"] == MSGPACK  # POST: the request's own type
    req_id = decode(submitted)["reqId"]
    while decode(legacy.solution(req_id)) == {"reqId": req_id}:
        time.sleep(0.02)
    # GET solution: the type chosen at POST; status: msgpack; incumbents: JSON; no Accept: JSON.
    stored = legacy.solution(req_id, headers={"Accept": "application/*"})
    assert stored.headers["Content-Type"] == MSGPACK
    # Another explicit type: the stored result is decoded and encoded again (legacy server).
    for kind in (JSON, ZLIB):
        again = legacy.solution(req_id, headers={"Accept": kind})
        assert again.headers["Content-Type"] == kind and decode(again) == decode(stored)
    assert legacy.status(req_id, headers={"Accept": "*/*"}).headers["Content-Type"] == MSGPACK
    assert legacy.incumbents(req_id, headers={"Accept": "*/*"}).headers["Content-Type"] == JSON
    assert legacy.status(req_id, headers={"Accept": None}).headers["Content-Type"] == JSON
    refused = legacy.status(req_id, headers={"Accept": "text/html"})
    assert refused.status_code == 415 and "unsupported Accept" in decode(refused)["error"]
    assert legacy.delete(req_id).status_code == 200


def test_pending_then_abort_of_the_running_solver(
    legacy: CuOptServerClient, cuopt_server_emulator: EmulatorProcess, solver_pid, process_alive
) -> None:
    req_id = legacy.submit_id(long_milp(), params={"incumbent_solutions": "True"})
    pid = solver_pid(cuopt_server_emulator, req_id)
    pending = legacy.solution(req_id)
    assert pending.status_code == 200 and decode(pending) == {"reqId": req_id}  # exactly that, never 202
    assert decode(legacy.status(req_id)) == "running"
    assert decode(legacy.abort(req_id)) == {"queued": 0, "running": 1, "cached": 0}
    deadline = time.monotonic() + 10
    while process_alive(pid):
        assert time.monotonic() < deadline, "the aborted job's solver still runs"
        time.sleep(0.05)
    assert decode(legacy.status(req_id)) == "aborted"
    aborted = legacy.solution(req_id)
    assert aborted.status_code == 500
    assert decode(aborted) == {"error": f"{req_id} was aborted", "error_result": True}
    # Incumbents found before the abort are still handed out, then the sentinel.
    batches = [decode(legacy.incumbents(req_id)) for _ in range(2)]
    assert SENTINEL in batches and batches[-1] == SENTINEL
    assert decode(legacy.abort(req_id)) == {"queued": 0, "running": 0, "cached": 0}
    assert legacy.delete(req_id).status_code == 200


def test_abort_flags_and_wildcard_id(legacy: CuOptServerClient) -> None:
    req_id = legacy.submit_id(long_milp())
    # Only queued jobs: a running (or still queued) one is counted where it is.
    counts = decode(legacy.abort(req_id, params={"queued": "True", "running": "False"}))
    assert counts["running"] == 0 and counts["cached"] == 0
    if counts["queued"] == 0:
        assert decode(legacy.abort(req_id, params={"running": "True"})) == {
            "queued": 0,
            "running": 1,
            "cached": 0,
        }
    assert decode(legacy.status(req_id)) == "aborted"
    star = legacy.abort("*")
    assert star.status_code == 400 and "at least one of" in decode(star)["error"]
    assert decode(legacy.abort("*", params={"cached": "True"}))["running"] == 0
    assert legacy.abort(req_id, params={"running": "maybe"}).status_code == 422
    assert legacy.delete(req_id).status_code == 200


def test_solver_log_from_a_byte_offset(legacy: CuOptServerClient) -> None:
    req_id = legacy.submit_id(TINY_LP, params={"solver_logs": "True"})
    assert legacy.wait(req_id).status_code == 200
    whole = decode(legacy.log(req_id))
    text = "\n".join(whole["log"]).encode()
    assert whole["nbytes"] == len(text) and b"HiGHS" in text
    tail = decode(legacy.log(req_id, frombyte=10))
    assert "\n".join(tail["log"]).encode() == text[10:] and tail["nbytes"] == len(text)
    assert decode(legacy.log(req_id, frombyte=whole["nbytes"])) == {"log": [""], "nbytes": len(text)}
    negative = legacy.log(req_id, frombyte=-1)
    assert negative.status_code == 422 and "frombyte" in decode(negative)["error"]
    assert legacy.request("GET", "/cuopt/log/not-a-uuid").status_code == 400
    # The result's deletion leaves the log (legacy): DELETE /cuopt/log removes it, then 404.
    assert legacy.delete(req_id).status_code == 200
    removed = legacy.request("DELETE", f"/cuopt/log/{req_id}")
    assert (
        removed.status_code == 200 and removed.headers["Content-Type"] == JSON and removed.content == b"null"
    )
    for response in (legacy.log(req_id), legacy.request("DELETE", f"/cuopt/log/{req_id}")):
        assert response.status_code == 404
        assert decode(response) == {"error": f"log not found for request {req_id}"}  # no error_result
    unlogged = legacy.submit_id(TINY_LP)
    legacy.wait(unlogged)
    assert legacy.log(unlogged).status_code == 404
    legacy.delete(unlogged)


def test_incumbents_are_read_once_then_the_sentinel(legacy: CuOptServerClient) -> None:
    req_id = legacy.submit_id(long_milp(1.5), params={"incumbent_solutions": "True"})
    costs = []
    while True:
        done = decode(legacy.status(req_id)) == "completed"
        batch = decode(legacy.incumbents(req_id))
        if batch == SENTINEL:
            break
        assert all(len(item["solution"]) == 44 and item["cost"] is not None for item in batch)
        costs += [item["cost"] for item in batch]
        assert not (done and not batch), "a finished job answered [] instead of the sentinel"
        time.sleep(0.1)
    assert costs and costs == sorted(costs, reverse=True)  # improving (minimize)
    assert decode(legacy.incumbents(req_id)) == SENTINEL
    result = decode(legacy.solution(req_id))["response"]["solver_response"]
    assert result["solution"]["primal_objective"] == pytest.approx(costs[-1])
    legacy.delete(req_id)


def test_request_bodies_read(legacy: CuOptServerClient) -> None:
    """JSON, zlib-compressed JSON and msgpack with msgpack-numpy numeric arrays: the same optimum."""
    with_arrays = {
        **TINY_LP,
        "csr_constraint_matrix": {
            "offsets": numpy_map([0, 2, 4], "<i8"),
            "indices": numpy_map([0, 1, 0, 1], "<i4"),
            "values": numpy_map([3.0, 4.0, 2.7, 10.1], "<f8"),
        },
        "variable_types": ["C", "C"],
    }
    bodies = [
        (JSON, json.dumps(TINY_LP).encode()),
        (ZLIB, zlib.compress(json.dumps(TINY_LP).encode())),
        (MSGPACK, msgpack.packb(with_arrays)),
    ]
    for kind, data in bodies:
        req_id = legacy.submit_id(None, data=data, headers={"Content-Type": kind})
        done = legacy.wait(req_id)
        assert done.status_code == 200, (kind, done.text)
        solution = done.json()["response"]["solver_response"]["solution"]
        assert solution["primal_solution"] == pytest.approx([1.8, 0.0], abs=1e-6), kind
        legacy.delete(req_id)


def test_pickle_is_refused_in_both_forms(legacy: CuOptServerClient) -> None:
    """A deliberate difference from the real server, which unpickles both (docs/emulator.md)."""
    posted = legacy.submit(data=pickle.dumps(TINY_LP), headers={"Content-Type": "application/octet-stream"})
    assert posted.status_code == 415 and decode(posted) == {"error": PICKLE_REFUSED, "error_result": False}
    object_array = {**TINY_LP, "variable_types": OBJECT_ARRAY}
    req_id = legacy.submit_id(None, data=msgpack.packb(object_array), headers={"Content-Type": MSGPACK})
    refused = legacy.wait(req_id)  # the legacy server decodes when it runs the job
    assert refused.status_code == 422
    body = decode(refused)
    assert body["error_result"] is True and "object array" in body["error"] and "pickle" in body["error"]
    other = legacy.submit(data=b"x", headers={"Content-Type": "text/plain"})
    assert other.status_code == 415 and "unsupported Content-Type" in decode(other)["error"]
    legacy.delete(req_id)


def test_content_length_is_required(legacy: CuOptServerClient) -> None:
    chunked = legacy.submit(data=iter([json.dumps(TINY_LP).encode()]), headers={"Content-Type": JSON})
    assert chunked.status_code == 422 and "Content-Length" in decode(chunked)["error"]
    empty = legacy.submit(data=b"", headers={"Content-Type": JSON})
    assert empty.status_code == 422 and "Data length is zero" in decode(empty)["error"]


def test_invalid_problem_legacy_fails_on_get(legacy: CuOptServerClient) -> None:
    req_id = legacy.submit_id(BAD_LP)  # the legacy server accepts anything at POST
    failed = legacy.wait(req_id)
    assert failed.status_code == 400
    body = decode(failed)
    assert body["error_result"] is True and "upper_bounds" in body["error"]
    assert decode(legacy.status(req_id)) == "completed"  # legacy: any finished job
    undecodable = legacy.submit_id(None, data=b"{not json", headers={"Content-Type": JSON})
    answer = legacy.wait(undecodable)
    assert answer.status_code == 422 and decode(answer)["error"].startswith(
        "unable to load optimization data"
    )
    for rid in (req_id, undecodable):
        legacy.delete(rid)


def test_result_file_name_and_mode(legacy: CuOptServerClient, cuopt_result_dir: Path) -> None:
    problem = lp_problem(150_000, 300)  # a result over the session emulator's 1 MB threshold
    headers = {"CUOPT-RESULT-FILE": "../escape.result"}  # escaping names are ignored: a UUID instead
    req_id = legacy.submit_id(problem, headers=headers)
    answer = decode(legacy.wait(req_id, timeout=120))
    assert {"result_file", "format"} <= set(answer) <= {"result_file", "format", "warnings", "notes"}
    assert answer["format"] == "json" and "response" not in answer
    path = cuopt_result_dir / answer["result_file"]
    assert answer["result_file"] != "../escape.result" and path.is_file()
    assert not (cuopt_result_dir.parent / "escape.result").exists()
    assert path.stat().st_mode & 0o777 == 0o644
    stored = json.loads(path.read_bytes())
    assert (
        stored["reqId"] == req_id
        and len(stored["response"]["solver_response"]["solution"]["primal_solution"]) == 150_000
    )
    legacy.delete(req_id)


# -- fault rules on /cuopt -------------------------------------------------------------------------------


def test_fault_rules_apply_to_the_cuopt_routes(
    legacy: CuOptServerClient, cuopt_server_emulator: EmulatorProcess
) -> None:
    before = cuopt_server_emulator.stats()["faults"].get("injected", 0)
    cuopt_server_emulator.add_faults(
        {"action": "status", "status": 503, "method": "POST", "route": "/cuopt/request"}
    )
    failed = legacy.submit(TINY_LP)
    assert failed.status_code == 503 and failed.headers["Content-Type"] == JSON
    assert decode(failed) == {
        "error": "Service Unavailable (a fault injected by the emulator)",
        "error_result": False,
    }
    req_id = legacy.submit_id(TINY_LP)  # times: 1
    assert legacy.wait(req_id).status_code == 200
    # drop after handling: the client loses the answer, the result stays (reading never consumes it).
    cuopt_server_emulator.add_faults({"action": "drop", "route": "/cuopt/solution/{id}"})
    with pytest.raises(requests.ConnectionError):
        legacy.solution(req_id)
    assert decode(legacy.solution(req_id))["reqId"] == req_id
    # An explicit body keeps the site's exact Content-Type (no "; charset=").
    cuopt_server_emulator.add_faults(
        {"action": "status", "status": 500, "route": "/cuopt/request/{id}", "body": {"error": "boom"}}
    )
    broken = legacy.status(req_id)
    assert (
        broken.status_code == 500
        and broken.headers["Content-Type"] == JSON
        and decode(broken) == {"error": "boom"}
    )
    assert cuopt_server_emulator.stats()["faults"]["injected"] == before + 3
    logged = [(r["method"], r["route"], r["status"]) for r in cuopt_server_emulator.requests_log()]
    assert ("POST", "/cuopt/request", 503) in logged and ("GET", "/cuopt/request/{req_id}", 500) in logged
    legacy.delete(req_id)


# -- the gRPC proxy ----------------------------------------------------------------------------------------


def test_proxy_validates_at_post_and_refuses_what_it_lacks(proxy: CuOptServerClient) -> None:
    invalid = proxy.submit(BAD_LP)
    assert invalid.status_code == 400 and decode(invalid)["error_result"] is False
    posted = proxy.submit(data=pickle.dumps(TINY_LP), headers={"Content-Type": "application/octet-stream"})
    assert posted.status_code == 415 and decode(posted)["error"] == PICKLE_REFUSED
    objects = {**TINY_LP, "variable_types": OBJECT_ARRAY}
    refused = proxy.submit(data=msgpack.packb(objects), headers={"Content-Type": MSGPACK})
    assert refused.status_code == 422 and decode(refused)["error_result"] is False
    assert "object array" in decode(refused)["error"]
    assert proxy.submit(TINY_LP, params={"cache": "True"}).status_code == 501
    assert proxy.submit([TINY_LP, TINY_LP]).status_code == 501  # batch LP
    req_id = proxy.submit_id(TINY_LP)
    assert proxy.abort(req_id, params={"running": "True"}).status_code == 501
    assert proxy.abort("*", params={"running": "True"}).status_code == 501
    assert proxy.request("POST", "/cuopt/solution", json={"response": {}}).status_code == 501
    # No Accept on the proxy: msgpack (a JSON-only client must send Accept every time).
    assert proxy.status(req_id, headers={"Accept": None}).headers["Content-Type"] == MSGPACK
    assert proxy.wait(req_id).status_code == 200
    proxy.delete(req_id)


def test_proxy_abort_log_and_status(
    proxy: CuOptServerClient, proxy_emulator: EmulatorProcess, solver_pid
) -> None:
    req_id = proxy.submit_id(long_milp(), params={"solver_logs": "True"})
    solver_pid(proxy_emulator, req_id)
    log = decode(proxy.log(req_id))
    assert log["nbytes"] >= 0 and isinstance(log["log"], list)
    assert decode(proxy.abort(req_id)) == {"queued": 0, "running": 1, "cached": 0}
    assert decode(proxy.status(req_id)) == "aborted"  # at once: the abort marks the job before killing it
    cancelled = proxy.solution(req_id)
    assert cancelled.status_code == 409
    assert decode(cancelled) == {"error": f"job {req_id} cancelled", "error_result": False}
    deleted = proxy.request("DELETE", f"/cuopt/log/{req_id}")
    assert deleted.status_code == 200 and deleted.content == b""  # a no-op on the proxy
    unlogged = proxy.submit_id(TINY_LP)
    assert proxy.log(unlogged).status_code == 404
    assert proxy.wait(unlogged).status_code == 200
    missing = proxy.status(MISSING_ID)
    assert missing.status_code == 404
    assert decode(missing) == {"error": f"job {MISSING_ID} does not exist", "error_result": False}
    for rid in (req_id, unlogged):
        proxy.delete(rid)


def test_proxy_writes_the_result_file_at_each_get(proxy: CuOptServerClient, proxy_result_dir: Path) -> None:
    req_id = proxy.submit_id(lp_problem(200, 50), headers={"CUOPT-RESULT-FILE": "proxy.result"})
    answer = decode(proxy.wait(req_id))
    # The proxy lists warnings and notes even when empty.
    assert set(answer) == {"result_file", "format", "warnings", "notes"} and answer["warnings"] == []
    assert answer["result_file"] == "proxy.result" and answer["format"] == "json"
    path = proxy_result_dir / "proxy.result"
    assert json.loads(path.read_bytes())["response"]["solver_response"]["status"] == "Optimal"
    path.unlink()
    assert decode(proxy.solution(req_id)) == answer and path.is_file()  # written again at this GET
    proxy.delete(req_id)
