"""The self-hosted cuOpt server's content types: which one an answer gets, and its bytes.

Standard library and msgpack only (no aiohttp): the solver processes encode results with it too.

Every answer carries exactly one of three Content-Type strings, **without parameters**:
``application/json``, ``application/zlib`` (zlib-compressed JSON) and ``application/vnd.msgpack``.
``cuopt-sh-client`` compares the header by exact string and decodes anything that is not exactly
JSON or zlib as msgpack, so ``application/json; charset=utf-8`` (what aiohttp's ``json_response``
sends) would crash it. Which type an answer gets follows the ``Accept`` rules of
shared/reference/cuopt_selfhosted.md §3, implemented by :func:`resolve_accept`.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import msgpack

from optimization_emulator.cuopt.decode import JSON, MSGPACK, PICKLE, ZLIB

__all__ = [
    "JSON",
    "MSGPACK",
    "PICKLE",
    "ZLIB",
    "AcceptError",
    "encode",
    "request_type",
    "resolve_accept",
    "transcode",
]

#: Answer types, and the ``format`` a result file reports for each.
FORMATS = {JSON: "json", MSGPACK: "msgpack", ZLIB: "zlib"}
WILDCARDS = ("application/*", "*/*")
#: Request bodies the real server reads (pickle is refused by the emulator, see decode.PICKLE_REFUSED).
REQUEST_TYPES = (JSON, MSGPACK, ZLIB, PICKLE)
#: Where a wildcard ``Accept`` resolves by endpoint (§3): the type the job was submitted with, the
#: request's own type, msgpack, or JSON.
SUBMIT, SOLUTION, STATUS, INCUMBENTS = "submit", "solution", "status", "incumbents"


class AcceptError(ValueError):
    """An ``Accept`` the server does not serve (answered 415, in JSON)."""


def request_type(header: str | None) -> str | None:
    """The body type named by a request's ``Content-Type`` (its media type, parameters dropped);
    missing means JSON; None for a type the server does not read (415)."""
    if not header:
        return JSON
    media = header.split(";", 1)[0].strip().lower()
    return media if media in REQUEST_TYPES else None


def resolve_accept(
    header: str | None,
    endpoint: str,
    *,
    legacy: bool,
    job_type: str | None = None,
    body_type: str | None = None,
) -> str:
    """The answer type for ``Accept: header`` at ``endpoint`` (one of the constants above).

    ``job_type``: the type chosen when the job was submitted (if the id is known); ``body_type``:
    the type of a POST's body. Raises :class:`AcceptError` for an unsupported ``Accept``.
    """
    value = (header or "").strip().lower()
    if value in FORMATS:
        return value
    if value and value not in WILDCARDS:
        raise AcceptError(
            f"unsupported Accept {header!r}: use application/json, application/vnd.msgpack, "
            "application/zlib, application/* or */*"
        )
    if not value and legacy:  # the legacy server answers JSON to a client that states no preference
        return JSON
    if endpoint == INCUMBENTS:
        return JSON
    if endpoint == SUBMIT:
        return JSON if body_type in (None, PICKLE) else body_type
    if endpoint == SOLUTION and job_type is not None:
        return job_type
    return MSGPACK


def encode(value: Any, mime: str) -> bytes:
    """``value`` as the bytes of an answer of type ``mime``."""
    if mime == MSGPACK:
        return msgpack.packb(value)
    text = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    return zlib.compress(text, 1) if mime == ZLIB else text


def transcode(data: bytes, stored: str, mime: str) -> bytes:
    """A stored answer (the emulator's own bytes, encoded as ``stored``) re-encoded as ``mime``: the
    legacy server decodes a stored result and encodes it again when a GET asks for another type."""
    if stored == mime:
        return data
    if stored == MSGPACK:
        value = msgpack.unpackb(data, strict_map_key=False)
    else:
        value = json.loads(zlib.decompress(data) if stored == ZLIB else data)
    return encode(value, mime)
