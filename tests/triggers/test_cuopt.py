"""CuOptSolveTrigger in an asyncio loop against the emulator's NVCF API."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider.hooks.cuopt import CuOptHook
from airflow_provider.hooks.cuopt_problems import prepare_problem
from airflow_provider.triggers.cuopt import CuOptSolveTrigger

TINY = {
    "cost_matrix_data": {"data": {"0": [[0, 1], [1, 0]]}},
    "task_data": {"task_locations": [0, 1]},
    "fleet_data": {"vehicle_locations": [[0, 0], [0, 0]]},
    "solver_config": {"time_limit": 1},
}


@pytest.fixture(scope="module")
def pending_emulator():
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(api_keys=("k-p",), extra_args=("--nvcf-queue-delay", "5")) as emu:
        yield emu


@pytest.fixture
def hook(pending_emulator, cuopt_key_conn):
    pending_emulator.reset()
    return CuOptHook(cuopt_key_conn(pending_emulator))


def submit_pending(hook, problem=TINY):
    with prepare_problem(problem) as prepared:
        invocation, asset_id = hook.submit(prepared, hook.resolve_function(), poll_seconds=1)
    assert invocation.pending
    return invocation.req_id, asset_id


async def events(trigger):
    return [e async for e in trigger.run()]


def test_serialize_round_trip():
    t = CuOptSolveTrigger(req_id="r", output_uri="s3://b/o/", end_time=1.7e9, asset_id=None, poll_seconds=7)
    classpath, kwargs = t.serialize()
    assert classpath == "airflow_provider.triggers.cuopt.CuOptSolveTrigger"
    json.dumps(kwargs)
    assert CuOptSolveTrigger(**kwargs).serialize() == (classpath, kwargs)


async def test_result_is_stored_before_the_single_event(hook, tmp_path):
    req_id, _ = submit_pending(hook)
    trigger = CuOptSolveTrigger(
        req_id=req_id, output_uri=str(tmp_path) + "/", end_time=time.time() + 60, poll_seconds=1
    )
    (event,) = await events(trigger)
    assert event.payload["status"] == "succeeded"
    assert event.payload["output_paths"] == [str(tmp_path / f"{req_id}.json")]
    assert json.loads((tmp_path / f"{req_id}.json").read_text())["response"]["solver_response"]["status"] == 0
    assert len(json.dumps(event.payload)) < 1000  # paths, not the result


async def test_asset_deleted_by_the_trigger(hook, pending_emulator, tmp_path):
    from optimization_emulator.cuopt.generate import routing_problem

    req_id, asset_id = submit_pending(hook, routing_problem(300, 12, seed=4, time_limit=1))
    assert asset_id
    trigger = CuOptSolveTrigger(
        req_id=req_id,
        output_uri=str(tmp_path / "r.json"),
        end_time=time.time() + 60,
        asset_id=asset_id,
        poll_seconds=1,
    )
    (event,) = await events(trigger)
    assert event.payload["status"] == "succeeded" and event.payload["asset_deleted"] is True
    assert not pending_emulator.stats()["nvcf"]["assets_live"]


async def test_already_received_result_is_found_in_storage(hook, tmp_path):
    req_id, _ = submit_pending(hook)
    hook.wait_for_result(req_id, None, str(tmp_path) + "/", deadline=time.time() + 60, poll_seconds=1)
    trigger = CuOptSolveTrigger(
        req_id=req_id, output_uri=str(tmp_path) + "/", end_time=time.time() + 60, poll_seconds=1
    )
    (event,) = await events(trigger)  # NVCF now answers 404 for this request
    assert event.payload["status"] == "succeeded" and event.payload["output_paths"]


async def test_gone_request_without_stored_result_fails(hook, tmp_path):
    trigger = CuOptSolveTrigger(
        req_id="no-such-request", output_uri=str(tmp_path) + "/", end_time=time.time() + 30, poll_seconds=1
    )
    (event,) = await events(trigger)
    assert event.payload["status"] == "failed" and "only once" in event.payload["message"]


async def test_deadline_gives_timeout(hook, tmp_path):
    req_id, _ = submit_pending(hook)
    trigger = CuOptSolveTrigger(
        req_id=req_id, output_uri=str(tmp_path / "x.json"), end_time=time.time() + 0.5, poll_seconds=1
    )
    (event,) = await events(trigger)
    assert event.payload["status"] == "timeout"


async def test_auth_failure_is_one_error_event(pending_emulator, monkeypatch, tmp_path):
    conn = {"conn_type": "cuopt", "host": pending_emulator.url, "password": "bad-key-999"}
    monkeypatch.setenv("AIRFLOW_CONN_CUOPT_BAD", json.dumps(conn))
    trigger = CuOptSolveTrigger(
        req_id="r", output_uri=str(tmp_path), end_time=time.time() + 30, cuopt_conn_id="cuopt_bad"
    )
    (event,) = await events(trigger)
    assert event.payload["status"] == "error" and "401" in event.payload["message"]
    assert "bad-key-999" not in event.payload["message"]


async def test_token_renewed_inside_the_trigger(tmp_path, client_conn_json):
    from optimization_emulator.testing.emulator import EmulatorProcess

    with EmulatorProcess(
        api_keys=("k-x",), extra_args=("--token-ttl", "3", "--nvcf-queue-delay", "7")
    ) as emu:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_CONN_CUOPT_JWT", client_conn_json(emu))
            hook = CuOptHook("cuopt_jwt")
            with prepare_problem(TINY) as prepared:
                invocation, _ = hook.submit(prepared, hook.resolve_function(), poll_seconds=1)
            trigger = CuOptSolveTrigger(
                req_id=invocation.req_id,
                output_uri=str(tmp_path) + "/",
                end_time=time.time() + 60,
                poll_seconds=1,
                cuopt_conn_id="cuopt_jwt",
            )
            (event,) = await events(trigger)
        assert event.payload["status"] == "succeeded"
        assert emu.stats()["nvcf"]["tokens_issued"] >= 3  # worker's token + renewals in the trigger


async def test_on_kill_deletes_the_asset(hook, pending_emulator, tmp_path):
    from optimization_emulator.cuopt.generate import routing_problem

    req_id, asset_id = submit_pending(hook, routing_problem(300, 12, seed=6, time_limit=1))
    assert asset_id in pending_emulator.stats()["nvcf"]["assets_live"]
    trigger = CuOptSolveTrigger(
        req_id=req_id, output_uri=str(tmp_path), end_time=time.time() + 60, asset_id=asset_id
    )
    await trigger.on_kill()
    assert asset_id not in pending_emulator.stats()["nvcf"]["assets_live"]
