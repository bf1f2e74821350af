"""Property-based: whatever a (broken or hostile) service answers, the hooks raise a clear provider
error or return a valid value — never an unhandled KeyError/TypeError/ValueError, never a hang.

A real HTTP server on 127.0.0.1 answers every request with the status, headers and body that
hypothesis draws; the hooks talk to it over sockets exactly as to the real services.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider.events.nextmv import event_from_metadata
from airflow_provider.hooks.cuopt import CuOptHook
from airflow_provider.hooks.cuopt_async import CuOptAsyncHook
from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.hooks.nextmv_async import NextmvAsyncHook
from airflow_provider.protocol import cuopt as cuopt_proto
from airflow_provider.utils.retry import RetryPolicy

NO_RETRY = RetryPolicy(max_attempts=1, max_elapsed=5, initial_wait=0, max_wait=0)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
# Bodies that look like the real shapes (so deep branches are reached) mixed with garbage.
plausible = st.fixed_dictionaries(
    {},
    optional={
        "run_id": json_values,
        "upload_id": json_values,
        "upload_url": json_values,
        "url": json_values,
        "reqId": json_values,
        "status": st.sampled_from(["fulfilled", "pending-evaluation", "errored", "in-progress", "weird"])
        | json_values,
        "response": json_values,
        "responseReference": json_values,
        "errorCode": json_values,
        "functions": json_values,
        "assetId": json_values,
        "uploadUrl": json_values,
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "status_v2": st.sampled_from(["queued", "running", "succeeded", "failed", "canceled", "?"])
                | json_values,
                "status": json_values,
                "error": json_values,
                "format": json_values,
                "output_size": json_values,
            },
        )
        | json_values,
    },
)
bodies = (
    plausible.map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.just(b'{"truncated": ')
)
statuses = st.sampled_from([200, 200, 200, 202, 204, 301, 400, 401, 404, 409, 429, 500, 502, 503, 504])


class _Scripted(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"{}")

    def _reply(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body = type(self).answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _reply  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hostile_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def hooks(hostile_server):
    mp = pytest.MonkeyPatch()
    mp.setenv(
        "AIRFLOW_CONN_HOSTILE_NEXTMV",
        json.dumps({"conn_type": "nextmv", "host": hostile_server, "password": "k-1234"}),
    )
    mp.setenv(
        "AIRFLOW_CONN_HOSTILE_CUOPT",
        json.dumps(
            {
                "conn_type": "cuopt",
                "host": hostile_server,
                "password": "k-1234",
                "extra": {"function_name": "cuopt"},
            }
        ),
    )
    yield (
        NextmvHook("hostile_nextmv", retry_policy=NO_RETRY, timeout=(2, 5)),
        CuOptHook("hostile_cuopt", retry_policy=NO_RETRY, timeout=(2, 5)),
    )
    mp.undo()


def _only_provider_errors(fn):
    try:
        return fn()
    except AirflowException:
        return None


COMMON = dict(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(**COMMON)
@given(status=statuses, body=bodies)
def test_nextmv_sync_calls(hooks, status, body):
    nextmv, _ = hooks
    _Scripted.answer = (status, body)
    meta = _only_provider_errors(lambda: nextmv.get_run_metadata("app", "run"))
    if meta is not None:
        _only_provider_errors(lambda: event_from_metadata("app", "run", meta))
    _only_provider_errors(lambda: nextmv.request_upload_url("app"))
    _only_provider_errors(lambda: nextmv.create_run("app", {"input": {}}))
    _only_provider_errors(lambda: nextmv.list_runs("app", max_pages=2))


@settings(**COMMON)
@given(status=statuses, body=bodies)
def test_cuopt_sync_calls(hooks, status, body):
    _, cuopt = hooks
    _Scripted.answer = (status, body)
    _only_provider_errors(lambda: cuopt.poll("req", 1))
    _only_provider_errors(lambda: cuopt.invoke(("f", "v"), cuopt_proto.invoke_body(data_json=b"{}"), 1))
    _only_provider_errors(lambda: cuopt.resolve_function())
    _only_provider_errors(lambda: cuopt.create_asset())


@settings(**COMMON)
@given(status=statuses, body=bodies)
def test_async_hooks(hostile_server, hooks, status, body):
    _Scripted.answer = (status, body)

    async def calls():
        async with NextmvAsyncHook("hostile_nextmv", retry_policy=NO_RETRY, timeout=(2, 5)) as nextmv:
            meta = await _only_async(nextmv.get_run_metadata("app", "run"))
            if meta is not None:
                _only_provider_errors(lambda: event_from_metadata("app", "run", meta))
        async with CuOptAsyncHook("hostile_cuopt", retry_policy=NO_RETRY, timeout=(2, 5)) as cuopt:
            await _only_async(cuopt.poll("req", 1))

    asyncio.run(asyncio.wait_for(calls(), timeout=30))


async def _only_async(coro):
    try:
        return await coro
    except AirflowException:
        return None
