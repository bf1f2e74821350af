"""The shared retry policy, exercised over real sockets (a tiny local HTTP server), both sync and async."""

from __future__ import annotations

import asyncio
import http.server
import logging
import socket
import threading

import aiohttp
import pytest
import requests

from airflow_provider.exceptions import ServiceHTTPError
from airflow_provider.utils.retry import RetryPolicy, async_retrying, is_retryable, sync_retrying

FAST = RetryPolicy(max_attempts=4, max_elapsed=30, initial_wait=0.01, max_wait=0.05)
log = logging.getLogger("test")


@pytest.mark.parametrize(
    ("status", "idempotent", "expected"),
    [
        (429, False, True),
        (503, False, True),
        (500, False, False),  # ambiguous: the run may have been created
        (502, False, False),
        (504, False, False),
        (500, True, True),
        (504, True, True),
        (400, True, False),
        (401, True, False),
        (404, True, False),
    ],
)
def test_http_status_predicate(status, idempotent, expected):
    assert is_retryable(ServiceHTTPError("S", "GET", "/x", status), idempotent=idempotent) is expected


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_safe_to_resend_even_for_post():
    with pytest.raises(requests.ConnectionError) as info:
        requests.post(f"http://127.0.0.1:{_closed_port()}/runs", timeout=2)
    assert is_retryable(info.value, idempotent=False)


class _DropAfterRequest(http.server.BaseHTTPRequestHandler):
    """Reads the request, then closes the socket without answering: the ambiguous case."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def dropping_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DropAfterRequest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_response_lost_after_post_is_not_retried(dropping_server):
    calls = []

    def post():
        calls.append(1)
        return requests.post(dropping_server + "/runs", data=b"{}", timeout=5)

    with pytest.raises(requests.ConnectionError):
        for attempt in sync_retrying(FAST, idempotent=False, logger=log, what="create run"):
            with attempt:
                post()
    assert len(calls) == 1


def test_idempotent_get_is_retried_until_the_budget_ends(dropping_server, caplog):
    calls = []
    with caplog.at_level(logging.WARNING), pytest.raises(requests.ConnectionError):
        for attempt in sync_retrying(FAST, idempotent=True, logger=log, what="get status"):
            with attempt:
                calls.append(1)
                requests.get(dropping_server + "/status", timeout=5)
    assert len(calls) == FAST.max_attempts
    assert sum("retrying in" in r.message for r in caplog.records) == FAST.max_attempts - 1


def test_retry_after_is_honoured():
    waits = []
    exc = ServiceHTTPError("S", "GET", "/x", 429, retry_after=0.02)
    with pytest.raises(ServiceHTTPError):
        for attempt in sync_retrying(FAST, idempotent=True, logger=log, what="x", sleep=waits.append):
            with attempt:
                raise exc
    assert waits == [0.02] * (FAST.max_attempts - 1)


def test_retry_after_is_capped_by_max_wait():
    waits = []
    with pytest.raises(ServiceHTTPError):
        for attempt in sync_retrying(FAST, idempotent=True, logger=log, what="x", sleep=waits.append):
            with attempt:
                raise ServiceHTTPError("S", "GET", "/x", 429, retry_after=3600)
    assert max(waits) == FAST.max_wait


async def test_async_policy_matches_sync(dropping_server):
    calls = []
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async for attempt in async_retrying(FAST, idempotent=True, logger=log, what="get"):
                with attempt:
                    calls.append(1)
                    async with session.get(dropping_server + "/s") as r:
                        await r.read()
        assert len(calls) == FAST.max_attempts
        calls.clear()
        with pytest.raises(aiohttp.ClientError):
            async for attempt in async_retrying(FAST, idempotent=False, logger=log, what="post"):
                with attempt:
                    calls.append(1)
                    async with session.post(dropping_server + "/s", data=b"{}") as r:
                        await r.read()
        assert len(calls) == 1
    await asyncio.sleep(0)


def test_ambiguity_classification():
    from airflow_provider.exceptions import MalformedResponseError, ServiceUnavailableError
    from airflow_provider.utils.retry import is_ambiguous

    assert is_ambiguous(ServiceHTTPError("S", "POST", "/x", 500))
    assert is_ambiguous(ServiceHTTPError("S", "POST", "/x", 504))
    assert not is_ambiguous(ServiceHTTPError("S", "POST", "/x", 503))  # not processed
    assert not is_ambiguous(ServiceHTTPError("S", "POST", "/x", 400))  # definite answer
    assert is_ambiguous(MalformedResponseError("garbled"))
    try:
        raise ServiceUnavailableError("x") from requests.ReadTimeout("read timed out")
    except ServiceUnavailableError as wrapped:
        assert is_ambiguous(wrapped)
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post(f"http://127.0.0.1:{_closed_port()}/runs", timeout=2)
    try:
        raise ServiceUnavailableError("x") from refused.value
    except ServiceUnavailableError as wrapped:
        assert not is_ambiguous(wrapped)  # never reached the service
