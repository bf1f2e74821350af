"""CuOptSolveTrigger waiting for a self-hosted cuOpt server's job (``conn_type="cuopt_server"``)
against the emulator: one event, the result stored before it, deadline, restart, errors, on_kill."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider.triggers.cuopt import CuOptSolveTrigger
from optimization_emulator.testing.cuopt import TINY_LP, CuOptServerClient


@pytest.fixture
def server(queued_cuopt_server):
    return queued_cuopt_server


@pytest.fixture
def conn(queued_server_conn):
    return queued_server_conn


def trigger_for(req_id, conn, output_uri, seconds=60.0):
    return CuOptSolveTrigger(
        req_id=req_id,
        output_uri=str(output_uri),
        end_time=time.time() + seconds,
        poll_seconds=2,
        cuopt_conn_id=conn,
        conn_type="cuopt_server",
    )


async def events(trigger):
    return [e.payload async for e in trigger.run()]


def test_serialize_round_trip_keeps_the_backend(tmp_path):
    trigger = trigger_for("r1", "c", tmp_path / "o.json")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider.triggers.cuopt.CuOptSolveTrigger"
    again = CuOptSolveTrigger(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (classpath, kwargs) and kwargs["conn_type"] == "cuopt_server"
    legacy = {k: v for k, v in kwargs.items() if k != "conn_type"}  # triggers serialized before this field
    assert CuOptSolveTrigger(**legacy).conn_type == "cuopt"


async def test_result_is_stored_before_the_single_event(conn, server, tmp_path):
    req_id = CuOptServerClient(server.cuopt_server_url).submit_id(TINY_LP)
    (event,) = await events(trigger_for(req_id, conn, tmp_path / "o.json"))
    assert event["status"] == "succeeded" and event["output_paths"] == [str(tmp_path / "o.json")]
    assert json.loads((tmp_path / "o.json").read_text())["response"]["solver_response"]["status"] == "Optimal"
    assert server.stats()["cuopt_server"]["solution_polls"] >= 2  # it really waited


async def test_invalid_problem_is_one_failed_event(conn, server, tmp_path):
    bad = {**TINY_LP, "variable_bounds": {"upper_bounds": [1.0], "lower_bounds": [0.0, 0.0]}}
    req_id = CuOptServerClient(server.cuopt_server_url).submit_id(bad)
    (event,) = await events(trigger_for(req_id, conn, tmp_path / "o.json"))
    assert event["status"] == "failed" and req_id in event["message"]


async def test_deadline_gives_timeout(conn, server, tmp_path):
    req_id = CuOptServerClient(server.cuopt_server_url).submit_id(TINY_LP)
    (event,) = await events(trigger_for(req_id, conn, tmp_path / "o.json", seconds=0.5))
    assert event["status"] == "timeout" and "did not finish in time" in event["message"]


async def test_unknown_request_is_an_error_event_for_a_retry(conn, tmp_path):
    (event,) = await events(trigger_for("00000000-0000-0000-0000-000000000000", conn, tmp_path / "o.json"))
    assert event["status"] == "error" and "does not know" in event["message"]


async def test_msgpack_answer_is_one_error_event(conn, server, tmp_path):
    req_id = CuOptServerClient(server.cuopt_server_url).submit_id(TINY_LP)
    server.add_faults(
        {
            "action": "status",
            "status": 200,
            "route": "/cuopt/solution/{id}",
            "content_type": "application/vnd.msgpack",
        }
    )
    (event,) = await events(trigger_for(req_id, conn, tmp_path / "o.json"))
    assert event["status"] == "error" and "never decoded" in event["message"]


async def test_on_kill_aborts_the_job(conn, server, tmp_path):
    client = CuOptServerClient(server.cuopt_server_url)
    req_id = client.submit_id(TINY_LP)
    await trigger_for(req_id, conn, tmp_path / "o.json").on_kill()
    assert server.stats()["cuopt_server"]["requests_aborted"] == 1
    assert "aborted" in client.solution(req_id).json()["error"]
