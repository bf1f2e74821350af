"""Turning the bytes of an uploaded NVCF asset into a cuOpt problem, without ever unpickling.

The cuOpt container reads an extension-less asset by trying msgpack, JSON, zlib-compressed JSON
and, last, a restricted unpickler. The emulator sniffs instead, and refuses pickle outright:

* first byte ``0x78`` (a zlib header): decompress (bounded), then sniff the result again;
* ``{`` or ``[`` (after whitespace or a UTF-8 BOM): JSON;
* ``0x80`` (the pickle protocol 2+ opcode): rejected with a 422, never unpickled;
* anything else: msgpack through plain ``msgpack.unpackb`` — no ``object_hook``, no
  msgpack-numpy, whose decoder calls ``pickle.loads`` on object arrays.

The self-hosted server's request bodies say what they are in their Content-Type instead:
:func:`decode_typed` reads JSON, zlib-compressed JSON and msgpack (with msgpack-numpy's numeric
arrays, see ``numpy_maps``) and refuses pickle.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from optimization_emulator.cuopt.schema import CuOptError

#: Most bytes a compressed asset may expand to (guards against zlib bombs).
MAX_DECODED_BYTES = 2 * 1024**3
_PICKLE_PROTO = 0x80
_BOM = b"\xef\xbb\xbf"
JSON, ZLIB, MSGPACK, PICKLE = (
    "application/json",
    "application/zlib",
    "application/vnd.msgpack",
    "application/octet-stream",
)
#: What a refused pickle body is told (the real server unpickles it; the emulator never does).
PICKLE_REFUSED = (
    "application/octet-stream is a Python pickle: the emulator refuses pickle (unpickling runs arbitrary "
    "code; the real cuopt_server accepts it). Send application/json, application/zlib (zlib-compressed "
    "JSON) or application/vnd.msgpack"
)


def decode_problem(raw: bytes, *, max_bytes: int = MAX_DECODED_BYTES) -> Any:
    """The problem in ``raw``; :class:`CuOptError` (422) for pickle or undecodable data."""
    if raw[:1] == b"\x78":
        return decode_problem(_inflate(raw, max_bytes), max_bytes=max_bytes)
    text = raw.removeprefix(_BOM)
    head = text.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            return json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CuOptError(f"the input asset looks like JSON but does not parse: {exc}", 422) from None
    if raw[:1] == bytes([_PICKLE_PROTO]):
        raise CuOptError(
            "the input asset is a Python pickle: pickle input is not accepted (it can run arbitrary code); "
            "upload JSON, zlib-compressed JSON or msgpack",
            422,
        )
    if not raw:
        raise CuOptError("the input asset is empty", 422)
    return _unpack_msgpack(raw)


def _inflate(raw: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise CuOptError(
            f"the input asset starts like zlib data but does not decompress: {exc}", 422
        ) from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise CuOptError(f"the input asset decompresses to more than {max_bytes:,} bytes", 422)
    if not inflater.eof:
        raise CuOptError("the input asset is truncated zlib data", 422)
    return data


def _unpack_msgpack(raw: bytes) -> Any:
    try:
        import msgpack
    except ImportError:  # pragma: no cover - msgpack ships with the emulator's dependencies
        raise CuOptError(
            "the input asset is not JSON, and msgpack is not installed to read it", 422
        ) from None
    try:
        return msgpack.unpackb(raw)  # bin keys (msgpack-numpy's b"nd", ...) stay bytes
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types for bad data
        raise CuOptError(
            "unable to load optimization data stream: neither JSON, zlib-compressed JSON nor msgpack "
            f"({type(exc).__name__}: {exc})",
            422,
        ) from None


def decode_typed(raw: bytes, content_type: str, *, max_bytes: int = MAX_DECODED_BYTES) -> Any:
    """A self-hosted request body of ``content_type`` (json, zlib or msgpack): the problem.

    A msgpack list of ``[content_type, bytes]`` pairs (what ``cuopt-sh-client`` sends for a batch
    of files) becomes the list of those problems, each decoded by its own type. Raises
    :class:`CuOptError` (422) for pickle and for bodies that do not decode.
    """
    if content_type == PICKLE:
        raise CuOptError(PICKLE_REFUSED, 422)
    try:
        if content_type == ZLIB:
            return json.loads(_inflate(raw, max_bytes))
        if content_type == JSON:
            return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CuOptError(
            f"unable to load optimization data stream, {type(exc).__name__}: {exc}", 422
        ) from None
    if content_type != MSGPACK:
        raise CuOptError(f"unsupported content type {content_type!r}", 415)
    from optimization_emulator.cuopt.numpy_maps import expand_numpy_maps

    value = expand_numpy_maps(_unpack_msgpack(raw))
    if isinstance(value, list) and value and all(_is_typed_part(item) for item in value):
        return [decode_typed(part, kind, max_bytes=max_bytes) for kind, part in value]
    return value


def _is_typed_part(item: Any) -> bool:
    return (
        isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], bytes)
    )
