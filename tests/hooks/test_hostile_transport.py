"""Hostile *transport* (hostile_service_findings.md F2–F6, L5): a raw-socket server on 127.0.0.1
that trickles headers or bodies, never ends a body, declares 2 GB, answers 202 at once, or echoes
the credentials it was sent — against the sync hooks, the async hooks and both triggers.

Each test failed before the fix it names: per-call total time bounds (F4), byte caps (F3, F6),
early-answer spacing (F5), redaction of schemeless presigned paths and echoed secrets (F2, L5).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from airflow_provider.events.cuopt import SolveEventStatus
from airflow_provider.events.nextmv import RunEventStatus
from airflow_provider.exceptions import (
    CallTimeoutError,
    OptimizationError,
    ResponseTooLargeError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks.cuopt import CuOptHook
from airflow_provider.hooks.cuopt_async import CuOptAsyncHook
from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.hooks.nextmv_async import NextmvAsyncHook
from airflow_provider.triggers.cuopt import CuOptSolveTrigger
from airflow_provider.triggers.nextmv import NextmvRunTrigger
from airflow_provider.utils.http import MAX_API_BODY_BYTES, Timeouts
from airflow_provider.utils.retry import RetryPolicy

KEY = "k-hostile-9f3a"
CLIENT_ID, CLIENT_SECRET = "client-hostile", "s3cr3t-hostile-77"
NO_RETRY = RetryPolicy(max_attempts=1, max_elapsed=5, initial_wait=0, max_wait=0)
#: connect 2 s, read 1 s between bytes, 3 s for the whole call.
TIGHT = Timeouts(2, 1, 3)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RawServer:
    """Accepts HTTP/1.1 requests and lets the test write whatever bytes it likes back."""

    url: str = ""
    behaviour: Callable[[socket.socket, Request], None] | None = None
    requests: list[Request] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)

    def reset(self, behaviour: Callable[[socket.socket, Request], None]) -> None:
        self.behaviour, self.requests[:], self.sent[:] = behaviour, [], []


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = line.split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if ":" in h)}
    remaining = int(headers.get("content-length", 0)) - len(rest)
    while remaining > 0:
        chunk = sock.recv(min(remaining, 65536))
        if not chunk:
            break
        remaining -= len(chunk)
    return Request(method, path, headers)


@pytest.fixture(scope="module")
def raw_server():
    state = RawServer()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(30)
            try:
                while (request := _read_request(self.request)) is not None:
                    state.requests.append(request)
                    state.behaviour(self.request, request)
            except OSError:
                pass  # the client gave up: that is what most tests want

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def conns(raw_server, monkeypatch):
    """A Nextmv, an API-key cuOpt and a client-credentials cuOpt connection, all on the raw server."""
    url = raw_server.url
    monkeypatch.setenv(
        "AIRFLOW_CONN_RAW_NEXTMV", json.dumps({"conn_type": "nextmv", "host": url, "password": KEY})
    )
    extra = {"function_id": "fn-1", "function_version_id": "ver-1"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_RAW_CUOPT",
        json.dumps({"conn_type": "cuopt", "host": url, "password": KEY, "extra": extra}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_RAW_CUOPT_CLIENT",
        json.dumps(
            {
                "conn_type": "cuopt",
                "host": url,
                "extra": {
                    **extra,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "token_url": url + "/token",
                },
            }
        ),
    )
    return raw_server


def head(status: int = 200, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle_body(sock: socket.socket, _: Request) -> None:
    """Headers at once, then one byte every 0.4 s: a read timeout of 1 s never fires."""
    sock.sendall(head(200, {"Content-Type": "application/json", "Content-Length": "100000"}))
    while True:
        sock.sendall(b" ")
        time.sleep(0.4)


def trickle_headers(sock: socket.socket, _: Request) -> None:
    """The status line, then header bytes one at a time, never finishing the head."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while True:
        sock.sendall(b"a")
        time.sleep(0.4)


def endless_body(sent: list[int]) -> Callable[[socket.socket, Request], None]:
    def behave(sock: socket.socket, _: Request) -> None:
        sock.sendall(head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        sent.append(0)
        chunk = b" " * 65536
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        while True:
            sock.sendall(frame)
            sent[-1] += len(chunk)

    return behave


def declared_huge(sent: list[int]) -> Callable[[socket.socket, Request], None]:
    def behave(sock: socket.socket, _: Request) -> None:
        sock.sendall(head(200, {"Content-Type": "application/json", "Content-Length": str(2 * 10**9)}))
        sent.append(0)
        while True:
            sock.sendall(b" " * 65536)
            sent[-1] += 65536

    return behave


def answer(status: int, body: bytes, headers: dict[str, str] | None = None):
    def behave(sock: socket.socket, _: Request) -> None:
        sock.sendall(head(status, {"Content-Length": str(len(body)), **(headers or {})}) + body)

    return behave


def echo_credentials(status: int):
    """An error page that quotes every request header back, credentials included."""

    def behave(sock: socket.socket, request: Request) -> None:
        body = json.dumps({"error": "denied", "you_sent": request.headers}).encode()
        sock.sendall(
            head(status, {"Content-Type": "application/json", "Content-Length": str(len(body))}) + body
        )

    return behave


def timed(fn: Callable[[], object]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def nextmv_hook(timeout: Timeouts = TIGHT) -> NextmvHook:
    return NextmvHook("raw_nextmv", retry_policy=NO_RETRY, timeout=timeout)


def cuopt_hook(conn_id: str = "raw_cuopt", timeout: Timeouts = TIGHT) -> CuOptHook:
    return CuOptHook(conn_id, retry_policy=NO_RETRY, timeout=timeout)


# ------------------------------------------------------------------------- F4: total time per call
@pytest.mark.parametrize("behaviour", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_sync_calls_end_at_their_total_bound(conns, behaviour):
    conns.reset(behaviour)
    for call in (
        lambda: nextmv_hook().get_run_metadata("app", "run-1"),
        lambda: cuopt_hook().poll("req-1", 1),
    ):
        elapsed, exc = timed(call)
        assert isinstance(exc, CallTimeoutError), exc
        assert elapsed < TIGHT.total + 2, elapsed
        assert "total time bound" in str(exc)


@pytest.mark.parametrize("behaviour", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_async_calls_end_at_their_total_bound(conns, behaviour):
    conns.reset(behaviour)

    async def calls():
        async with NextmvAsyncHook("raw_nextmv", retry_policy=NO_RETRY, timeout=TIGHT) as nextmv:
            yield await_timed(nextmv.get_run_metadata("app", "run-1"))
        async with CuOptAsyncHook("raw_cuopt", retry_policy=NO_RETRY, timeout=TIGHT) as cuopt:
            yield await_timed(cuopt.poll("req-1", 1))

    async def main():
        return [await r async for r in calls()]

    for elapsed, exc in asyncio.run(main()):
        assert isinstance(exc, ServiceUnavailableError), exc
        assert elapsed < TIGHT.total + 2, elapsed


async def await_timed(coro) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await coro
    except BaseException as exc:  # noqa: BLE001
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_sync_waits_end_at_the_deadline_during_a_slow_call(conns):
    """Default per-call bounds (120 s) but a 3 s deadline: the wait ends with a timeout event at 3 s."""
    conns.reset(trickle_body)
    slow = Timeouts(2, 60, 120)
    started = time.monotonic()
    event = nextmv_hook(slow).wait_for_run(
        "app", "run-1", deadline=time.time() + 3, poll_interval=1, max_poll_interval=1
    )
    assert event.status is RunEventStatus.TIMEOUT
    cuopt = cuopt_hook(timeout=slow).wait_for_result(
        "req-1", None, "/tmp/never/", deadline=time.time() + 3, poll_seconds=1
    )
    assert cuopt.status is SolveEventStatus.TIMEOUT
    assert time.monotonic() - started < 2 * 3 + 4


@pytest.mark.parametrize("service", ["nextmv", "cuopt"])
def test_triggers_end_at_end_time_during_a_slow_call(conns, service, tmp_path):
    conns.reset(trickle_body)
    end_time = time.time() + 3
    if service == "nextmv":
        trigger = NextmvRunTrigger(
            app_id="app", run_id="run-1", end_time=end_time, nextmv_conn_id="raw_nextmv", poll_interval=1
        )
    else:
        trigger = CuOptSolveTrigger(
            req_id="req-1", output_uri=str(tmp_path) + "/", end_time=end_time, cuopt_conn_id="raw_cuopt"
        )

    async def first():
        async for event in trigger.run():
            return event

    started = time.monotonic()
    event = asyncio.run(asyncio.wait_for(first(), 30))
    assert event.payload["status"] == "timeout", event.payload
    assert time.monotonic() - started < 3 + 4


# ------------------------------------------------------------------------------- F3: byte caps
@pytest.mark.parametrize("kind", ["endless", "declared"])
def test_api_answers_are_capped_sync_and_async(conns, kind):
    sent: list[int] = []
    conns.reset(endless_body(sent) if kind == "endless" else declared_huge(sent))
    roomy = Timeouts(2, 10, 60)
    _, exc = timed(lambda: nextmv_hook(roomy).get_run_metadata("app", "run-1"))
    assert isinstance(exc, ResponseTooLargeError), exc
    assert "64 MiB" in str(exc) or f"{MAX_API_BODY_BYTES:,}" in str(exc), str(exc)

    async def via_async():
        async with CuOptAsyncHook("raw_cuopt", retry_policy=NO_RETRY, timeout=roomy) as cuopt:
            await cuopt.poll("req-1", 1)

    _, exc = timed(lambda: asyncio.run(via_async()))
    assert isinstance(exc, ResponseTooLargeError), exc
    # Reading stopped at the cap (what the server managed to push into socket buffers aside).
    if kind == "declared":
        assert max(sent, default=0) < 16 * 1024 * 1024, sent  # refused on the header
    else:
        assert max(sent) < MAX_API_BODY_BYTES + 32 * 1024 * 1024, sent


# --------------------------------------------------------------- F5: early pending answers spaced
def test_an_immediate_202_is_not_polled_in_a_tight_loop(conns, tmp_path):
    pending = json.dumps({"reqId": "req-1", "status": "pending-evaluation"}).encode()
    conns.reset(answer(202, pending, {"Content-Type": "application/json", "NVCF-REQID": "req-1"}))
    event = cuopt_hook().wait_for_result(
        "req-1", None, str(tmp_path) + "/", deadline=time.time() + 4, poll_seconds=5
    )
    assert event.status is SolveEventStatus.TIMEOUT
    sync_polls = len(conns.requests)
    assert 2 <= sync_polls <= 6, sync_polls  # about one per second, backing off; was ~800/s

    conns.requests.clear()
    trigger = CuOptSolveTrigger(
        req_id="req-1",
        output_uri=str(tmp_path) + "/",
        end_time=time.time() + 4,
        poll_seconds=5,
        cuopt_conn_id="raw_cuopt",
    )

    async def first():
        async for event in trigger.run():
            return event

    assert asyncio.run(first()).payload["status"] == "timeout"
    assert 2 <= len(conns.requests) <= 6, len(conns.requests)


# ------------------------------------------------------------------ F2, L5: no secret in any text
def _texts(exc: BaseException | None, caplog, capfd=None) -> str:
    """The error and every log line: stdlib records and what Airflow's structlog printed."""
    printed = capfd.readouterr() if capfd is not None else None
    lines = [r.getMessage() for r in caplog.records] + ([printed.out, printed.err] if printed else [])
    return "\n".join([str(exc), repr(exc), *lines])


def test_echoed_api_key_is_not_repeated_in_errors(conns, caplog, capfd):
    conns.reset(echo_credentials(403))
    caplog.set_level(logging.DEBUG)
    _, nextmv_exc = timed(lambda: nextmv_hook().get_run_metadata("app", "run-1"))
    _, cuopt_exc = timed(lambda: cuopt_hook().poll("req-1", 1))
    for exc in (nextmv_exc, cuopt_exc):
        assert isinstance(exc, ServiceHTTPError), exc
        assert "denied" in str(exc)  # the service's words stay
        assert KEY not in _texts(exc, caplog, capfd)


def test_echoed_basic_header_of_the_token_request_is_masked(conns, caplog, capfd):
    conns.reset(echo_credentials(401))
    caplog.set_level(logging.DEBUG)
    _, exc = timed(lambda: cuopt_hook("raw_cuopt_client").poll("req-1", 1))
    assert isinstance(exc, OptimizationError), exc
    assert conns.requests[0].path.startswith("/token")
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert conns.requests[0].headers["authorization"] == f"Basic {basic}"  # it was sent
    text = _texts(exc, caplog, capfd)
    assert basic not in text and CLIENT_SECRET not in text, text
    from airflow.sdk.log import redact  # Airflow's own masker knows the Basic value too

    assert basic not in str(redact(f"Authorization: Basic {basic}"))


def test_schemeless_presigned_paths_are_redacted_in_logs_and_errors(conns, caplog, capfd):
    """urllib3 reports a refused storage host as ``... with url: /up?X-Amz-Signature=...``; the upload's
    retry loop logs each failed attempt, and the final error quotes the last one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    signature, credential = "deadbeef" * 8, "AKIAHOSTILE%2F20261204"
    url = f"http://127.0.0.1:{port}/up?X-Amz-Signature={signature}&X-Amz-Credential={credential}"
    conns.reset(answer(200, json.dumps({"upload_id": "up-1", "upload_url": url}).encode()))
    big = tmp_input(6 * 1024 * 1024)
    hook = NextmvHook(
        "raw_nextmv", retry_policy=RetryPolicy(max_attempts=2, max_elapsed=10, initial_wait=0.1, max_wait=0.1)
    )
    caplog.set_level(logging.DEBUG)
    _, exc = timed(lambda: hook.submit_run("app", input_uri=big, task_marker="m-1"))
    assert isinstance(exc, ServiceUnavailableError), exc
    text = _texts(exc, caplog, capfd)
    assert re.search(r"attempt 1/\d+ failed", text)  # the retry loop's before-sleep line was logged…
    assert signature not in text and "AKIAHOSTILE" not in text, text  # …without the signature
    assert {r.path for r in conns.requests} == {"/v1/applications/app/runs/uploadurl"}  # no run created


def tmp_input(size: int) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(b'{"pad": "' + b"x" * (size - 11) + b'"}')
    return f.name
