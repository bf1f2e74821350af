"""msgpack-numpy's array maps, decoded into plain lists without msgpack-numpy (and without pickle).

``cuopt-sh-client`` calls ``msgpack_numpy.patch()``, so a numpy array in a problem goes over the wire
as a map with bin keys: ``{b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [3], b"data": <raw
bytes>}`` (numpy scalars: ``b"nd": False``). msgpack-numpy's own decoder would call ``pickle.loads``
on ``b"kind": b"O"`` (object arrays: the data *is* a pickle) — remote code execution for whoever can
reach the server (shared/reference/cuopt_selfhosted.md §9). Here only booleans, integers and floats
are read (``np.frombuffer`` on a dtype built from a type *string*, which can never unpickle); object,
structured, string and complex arrays are refused with a 422 that says why. This is a deliberate
difference from the real server, which unpickles them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from optimization_emulator.cuopt.schema import CuOptError

#: numpy dtype kinds read: bool, signed and unsigned integers, floats.
NUMERIC_KINDS = frozenset("biuf")
_ND, _TYPE, _KIND, _SHAPE, _DATA = b"nd", b"type", b"kind", b"shape", b"data"


def expand_numpy_maps(value: Any) -> Any:
    """``value`` (as ``msgpack.unpackb`` gave it) with every msgpack-numpy map replaced by lists."""
    if isinstance(value, dict):
        if _ND in value:
            return _decode_map(value)
        if value.get(b"complex") is True:
            raise CuOptError("complex numbers (msgpack-numpy) are not accepted in a cuOpt problem", 422)
        return {key: expand_numpy_maps(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_numpy_maps(item) for item in value]
    return value


def _decode_map(value: dict[Any, Any]) -> Any:
    kind = value.get(_KIND, b"")
    if kind == b"O":
        raise CuOptError(
            "a msgpack-numpy object array (kind 'O') is a Python pickle: pickle is refused by the emulator "
            "(it can run arbitrary code); send numeric arrays or plain lists",
            422,
        )
    descr = value.get(_TYPE)
    if isinstance(descr, bytes):
        descr = descr.decode("ascii", errors="replace")
    if kind not in (b"", None) or not isinstance(descr, str):
        raise CuOptError(f"msgpack-numpy array of kind {kind!r} is not accepted: only numeric arrays", 422)
    try:
        dtype = np.dtype(descr)
    except TypeError as exc:
        raise CuOptError(f"msgpack-numpy array with an unknown type {descr!r}: {exc}", 422) from None
    if dtype.kind not in NUMERIC_KINDS:
        raise CuOptError(
            f"msgpack-numpy array of dtype {descr!r} is not accepted: only bool, integer and float arrays",
            422,
        )
    data = value.get(_DATA)
    if not isinstance(data, bytes):
        raise CuOptError("msgpack-numpy array without its data bytes", 422)
    scalar = value[_ND] is not True
    shape = [] if scalar else value.get(_SHAPE)
    if not isinstance(shape, list | tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CuOptError(f"msgpack-numpy array with a bad shape {shape!r}", 422)
    count = math.prod(shape)
    if len(data) != count * dtype.itemsize:
        raise CuOptError(
            f"msgpack-numpy array data holds {len(data)} bytes; its shape and type need "
            f"{count * dtype.itemsize}",
            422,
        )
    array = np.frombuffer(data, dtype=dtype, count=count).reshape(shape)
    return array.item() if scalar else array.tolist()
