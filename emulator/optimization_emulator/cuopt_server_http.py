"""HTTP pieces every self-hosted cuOpt route uses: answers with exact Content-Types, cuOpt's error
bodies, query flags, and the error middleware of the ``/cuopt`` site.

Answers are built with ``body=`` bytes and an explicit type — never ``json_response`` or ``text=``,
which append ``; charset=utf-8`` and make ``cuopt-sh-client`` decode the answer as msgpack. Errors are
``{"error": message, "error_result": bool}`` (reference §4.1): ``error_result`` true when the job
itself ended in error (the client then deletes it), false for request-level problems.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from optimization_emulator.cuopt_server_codec import JSON, AcceptError, encode, resolve_accept

logger = logging.getLogger("optimization_emulator.cuopt_server")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class CuOptHttpError(Exception):
    """Raised by a handler: answered as ``{"error", "error_result"}`` with ``status`` in ``mime``."""

    def __init__(self, status: int, message: str, *, error_result: bool = False, mime: str = JSON) -> None:
        super().__init__(message)
        self.status, self.message, self.error_result, self.mime = status, message, error_result, mime

    def response(self) -> web.Response:
        return error(self.status, self.message, self.mime, error_result=self.error_result)


def answer(value: Any, mime: str, status: int = 200) -> web.Response:
    """``value`` encoded as ``mime``, with exactly that Content-Type."""
    return raw(encode(value, mime), mime, status)


def raw(body: bytes, mime: str, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=mime)


def error(status: int, message: str, mime: str = JSON, *, error_result: bool | None = False) -> web.Response:
    """cuOpt's error body; ``error_result=None`` leaves the key out (errors raised before cuOpt's
    handlers run, and log errors, have none)."""
    body: dict[str, Any] = {"error": message}
    if error_result is not None:
        body["error_result"] = error_result
    return answer(body, mime, status)


def unknown_job(req_id: str, mime: str) -> CuOptHttpError:
    return CuOptHttpError(404, f"job {req_id} does not exist", mime=mime)


def accept(request: web.Request, endpoint: str, *, legacy: bool, **known: str | None) -> str:
    """The answer type of ``request`` at ``endpoint`` (see ``cuopt_server_codec.resolve_accept``);
    an unsupported ``Accept`` is a 415, answered in JSON."""
    try:
        return resolve_accept(request.headers.get("Accept"), endpoint, legacy=legacy, **known)
    except AcceptError as exc:
        raise CuOptHttpError(415, str(exc)) from None


def flag(query: Mapping[str, str], name: str, mime: str) -> bool | None:
    """A boolean query parameter as the sh client sends it (``True``/``False``); None when absent;
    anything else is a 422, as FastAPI's validation answers."""
    if name not in query:
        return None
    value = query[name].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise CuOptHttpError(422, f"query parameter {name!r} must be a boolean, got {query[name]!r}", mime=mime)


@web.middleware
async def render_errors(request: web.Request, handler) -> web.StreamResponse:
    """:class:`CuOptHttpError` and aiohttp's own errors (unknown route, wrong method) as JSON bodies
    with an exact Content-Type; unexpected exceptions as 500."""
    try:
        return await handler(request)
    except CuOptHttpError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Raised before any cuOpt handler ran (as FastAPI's own errors): no error_result.
        return error(exc.status, exc.reason, error_result=None)
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return error(500, "internal emulator error (see its log)")


def json_null() -> web.Response:
    """What a FastAPI handler returning None answers (legacy ``DELETE /cuopt/log/{id}``)."""
    return raw(json.dumps(None).encode(), JSON)
