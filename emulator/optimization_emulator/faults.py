"""Fault injection: make the emulator misbehave on purpose, per request, over real sockets.

Tests (and users, through the config file's ``"faults"``) add *rules*; each names which requests it
matches (``method``, ``route`` template or ``path_regex``), skips the first ``after`` matches and then
fires ``times`` times (``-1``: forever). The first rule that fires on a request decides what happens:

* ``status``: answer ``status`` (with ``retry_after`` and ``body``) instead of handling the request,
  or — with ``process`` — after handling it (the run *was* created, but the client saw a 500);
* ``drop``: reset the TCP connection without any answer, after handling the request (``process``,
  the default: only the answer is lost) or before;
* ``reset_upload``: read ``after_bytes`` of the request body, then reset the connection (nothing is
  stored or counted);
* ``reset_download``: handle the request, send the headers and ``after_bytes`` of the body, reset;
* ``delay``: sleep ``seconds`` before handling (``stage: "request"``) or before answering
  (``stage: "response"``: the work is done at once, the answer is late);
* ``expire``: refuse a presigned URL exactly as an expired one is refused;
* ``malformed``: answer a body that is not JSON;
* ``truncate``: handle the request, then send only ``bytes`` of its body with a matching
  Content-Length (a "complete" but cut answer);
* ``expire_tokens``: revoke every NVCF access token issued so far, then handle the request.

"Reset" means an RST (``SO_LINGER`` 0 then close): clients see ``ECONNRESET`` (or a broken pipe
while they are still sending), never a clean end of the stream. Admin (``/_emulator/...``) requests
never match. See docs/emulator.md, "Fault injection".
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import socket
import struct
import termios
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from optimization_emulator import nvcf_api
from optimization_emulator.app_keys import FAULT_BODY, STATS
from optimization_emulator.errors import PROBLEM_JSON, api_error, as_json_error
from optimization_emulator.fault_rules import (
    PRESIGNED_PREFIX,
    FaultBook,
)
from optimization_emulator.nvcf_auth import TokenError, TokenIssuer

logger = logging.getLogger("optimization_emulator.faults")

#: The message of a presigned URL past its expiry (``signing.UrlSigner.verify``); ``expire`` uses it.
EXPIRED_URL_MESSAGE = "the presigned URL has expired; request a new one"
ADMIN_PREFIX = "/_emulator/"
STATS_GROUP = "faults"
#: Request keys: the action of the fault that fired, and the status to log when it is not the
#: response's (None: the client got no status line at all).
FAULT_KEY = "emulator_fault"
LOGGED_STATUS_KEY = "emulator_fault_status"
_NO_STATUS = object()
_FLUSH_TIMEOUT_SECONDS = 2.0

FAULTS = web.AppKey("faults", FaultBook)


# -- what the request log shows ------------------------------------------------------------------------


def fault_of(request: web.BaseRequest) -> str | None:
    """The action of the fault that fired on ``request`` (None when none did)."""
    return request.get(FAULT_KEY)


def logged_status(request: web.BaseRequest, status: int) -> int | None:
    """The status the client got: None when the connection was reset before any status line."""
    override = request.get(LOGGED_STATUS_KEY, _NO_STATUS)
    return status if override is _NO_STATUS else override


# -- the middleware ---------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_template(request: web.Request) -> str | None:
    """The template of the route ``request`` matched (``/v1/applications/{app_id}/runs``); None if none."""
    route = request.match_info.route
    return route.resource.canonical if route.resource is not None else None


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Applies the first rule that fires on ``request``; admin requests are never faulted."""
    book = request.app[FAULTS]
    if not book.rules or request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    rule = book.pick(request.method, route_template(request), request.path)
    if rule is None:
        return await handler(request)
    request[FAULT_KEY] = rule.action
    stats = request.app[STATS]
    stats.incr(STATS_GROUP, "injected")
    stats.incr_keyed(STATS_GROUP, "by_action", rule.action)
    logger.info("fault %s (%s) on %s %s", rule.id, rule.action, request.method, request.path)
    return await _ACTIONS[rule.action](request, handler, rule.spec)


async def _handled(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The response the emulator would have sent (HTTP errors as responses, with JSON bodies)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return as_json_error(exc)


async def _status(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    if spec["process"]:
        await _handled(request, handler)
    return _error_response(request, spec)


async def _drop(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    if spec["process"]:
        await _handled(request, handler)
    return _reset(request, None)


async def _reset_upload(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    """Reads ``after_bytes`` of the body, then resets; the handler never runs, nothing is stored."""
    limit = spec["after_bytes"]
    if limit is None:
        limit = (request.content_length or 0) // 2
    received = 0
    while received < limit:
        chunk = await request.content.read(min(limit - received, 1024 * 1024))
        if not chunk:
            break
        received += len(chunk)
    return _reset(request, None)


async def _reset_download(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    response = await _handled(request, handler)
    size = await _body_size(response)
    cut = size // 2 if spec["after_bytes"] is None else min(spec["after_bytes"], size)
    head = await _body_head(response, cut)
    stream = web.StreamResponse(status=response.status, reason=response.reason, headers=_headers(response))
    stream.content_length = size
    await stream.prepare(request)
    if head:
        await stream.write(head)
    await _until_sent(request)
    _reset(request, response.status)
    return stream


async def _delay(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    if spec["stage"] == "response":
        try:
            response = await handler(request)
        except web.HTTPException:
            await asyncio.sleep(spec["seconds"])
            raise
        await asyncio.sleep(spec["seconds"])
        return response
    await asyncio.sleep(spec["seconds"])
    transport = request.transport
    if transport is None or transport.is_closing():
        # The client gave up: aiohttp has discarded the request body, so the request is not handled.
        request[LOGGED_STATUS_KEY] = None
        return web.Response(status=499)
    if spec["process"]:
        return await handler(request)
    return _error_response(request, spec)


async def _expire(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    raise api_error(web.HTTPForbidden, EXPIRED_URL_MESSAGE)  # what signing.UrlSigner.verify raises


async def _malformed(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    if spec["process"]:
        await _handled(request, handler)
    body = spec["body"] if isinstance(spec["body"], str) else json.dumps(spec["body"])
    return web.Response(
        body=body.encode(), status=spec["status"], content_type=spec["content_type"] or "application/json"
    )


async def _truncate(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    response = await _handled(request, handler)
    size = await _body_size(response)
    cut = size // 2 if spec["bytes"] is None else min(spec["bytes"], size)
    body = await _body_head(response, cut)
    return web.Response(body=body, status=response.status, reason=response.reason, headers=_headers(response))


async def _expire_tokens(request: web.Request, handler: Handler, spec: dict[str, Any]) -> web.StreamResponse:
    revoke_tokens(request.app)
    return await handler(request)


_ACTIONS: dict[str, Callable[[web.Request, Handler, dict[str, Any]], Awaitable[web.StreamResponse]]] = {
    "status": _status,
    "drop": _drop,
    "reset_upload": _reset_upload,
    "reset_download": _reset_download,
    "delay": _delay,
    "expire": _expire,
    "malformed": _malformed,
    "truncate": _truncate,
    "expire_tokens": _expire_tokens,
}


# -- answers and connections -----------------------------------------------------------------------------


def _error_response(request: web.Request, spec: dict[str, Any]) -> web.Response:
    """``spec["status"]`` with ``spec["body"]``, or the API's usual error shape for that status."""
    status, body, content_type = spec["status"], spec["body"], spec["content_type"]
    headers = {hdrs.RETRY_AFTER: spec["retry_after"]} if spec.get("retry_after") is not None else {}
    site_body = request.app.get(FAULT_BODY)
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
        default_type = "text/plain" if isinstance(body, str) else "application/json"
        if site_body is not None:  # a site with exact Content-Types (/cuopt): no "; charset=" added
            return web.Response(
                body=text.encode(), status=status, headers=headers, content_type=content_type or default_type
            )
        return web.Response(
            text=text, status=status, headers=headers, content_type=content_type or default_type
        )
    phrase = HTTPStatus(status).phrase
    detail = f"{phrase} (a fault injected by the emulator)"
    path = request.path
    if site_body is not None and content_type is None:  # a site with its own error shape
        data, kind = site_body(status, detail)
        return web.Response(body=data, status=status, headers=headers, content_type=kind)
    if path.startswith(PRESIGNED_PREFIX):
        text, default_type = _s3_error(status, detail), "application/xml"
    elif path.startswith("/v2/nvcf") or path == "/token":
        problem = {
            "type": "urn:nvcf-emulator:problem-details:" + "-".join(phrase.lower().split()),
            "title": phrase,
            "status": status,
            "detail": detail,
        }
        text, default_type = json.dumps(problem), PROBLEM_JSON
    else:
        text, default_type = json.dumps({"error": detail}), "application/json"
    return web.Response(text=text, status=status, headers=headers, content_type=content_type or default_type)


_S3_CODES = {
    400: "BadRequest",
    403: "AccessDenied",
    404: "NoSuchKey",
    409: "OperationAborted",
    429: "SlowDown",
    500: "InternalError",
    501: "NotImplemented",
    503: "SlowDown",
}


def _s3_error(status: int, message: str) -> str:
    code = _S3_CODES.get(status, "ServiceUnavailable" if status >= 500 else "InvalidRequest")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>EMULATORFAULT</RequestId></Error>"
    )


def _reset(request: web.Request, logged: int | None) -> web.StreamResponse:
    """Resets the connection (RST, not FIN); what is returned is never sent."""
    request[LOGGED_STATUS_KEY] = logged
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=499)


async def _until_sent(request: web.Request) -> None:
    """Waits (boundedly) until what was written reached the client, so a reset does not discard it."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _FLUSH_TIMEOUT_SECONDS
    while loop.time() < deadline and not transport.is_closing():
        if transport.get_write_buffer_size() == 0 and _unacknowledged(sock) == 0:
            return
        await asyncio.sleep(0.005)


def _unacknowledged(sock: Any) -> int:
    """Bytes the kernel still holds for the peer (Linux SIOCOUTQ); 0 where it cannot tell."""
    if sock is None or not hasattr(termios, "TIOCOUTQ"):
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except OSError:
        return 0


_DROPPED_HEADERS = frozenset({hdrs.CONTENT_LENGTH, hdrs.TRANSFER_ENCODING, hdrs.CONTENT_ENCODING})


def _headers(response: web.StreamResponse) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in _DROPPED_HEADERS}


def _file_path(response: web.StreamResponse) -> Path | None:
    if isinstance(response, web.FileResponse):
        return Path(response._path)  # aiohttp keeps a FileResponse's path only privately
    return None


def _bytes_body(response: web.StreamResponse) -> bytes:
    body = response.body if isinstance(response, web.Response) else None
    if body is None:
        return b""
    if not isinstance(body, bytes | bytearray):
        raise TypeError(f"cannot cut a {type(body).__name__} body")
    return bytes(body)


async def _body_size(response: web.StreamResponse) -> int:
    path = _file_path(response)
    if path is not None:
        return (await asyncio.to_thread(path.stat)).st_size
    return len(_bytes_body(response))


async def _body_head(response: web.StreamResponse, size: int) -> bytes:
    path = _file_path(response)
    if path is None:
        return _bytes_body(response)[:size]

    def read() -> bytes:
        with path.open("rb") as handle:
            return handle.read(size)

    return await asyncio.to_thread(read)


# -- NVCF tokens ------------------------------------------------------------------------------------------


class RevokingIssuer(TokenIssuer):
    """Issues tokens with a fresh secret; tokens signed by an earlier secret are refused as expired."""

    def __init__(self, previous: TokenIssuer) -> None:
        super().__init__(previous.ttl)
        self._revoked: list[TokenIssuer] = [*getattr(previous, "_revoked", ()), previous]

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        try:
            return super().verify(token, now)
        except TokenError:
            for old in self._revoked:
                try:
                    claims = TokenIssuer.verify(old, token, now=0)  # signed with a revoked secret?
                except TokenError:
                    continue
                raise TokenError(
                    f"the access token expired: the emulator's expire_tokens fault revoked it before its "
                    f"exp {claims.get('exp')}; request a new one from the token endpoint"
                ) from None
            raise


def revoke_tokens(app: web.Application) -> None:
    """Every NVCF access token issued so far becomes invalid (401); new ones work."""
    service = app.get(nvcf_api.SERVICE)
    if service is not None:
        service.auth.issuer = RevokingIssuer(service.auth.issuer)
