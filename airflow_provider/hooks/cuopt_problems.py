"""Turning a cuOpt problem (dict or URI) into inline JSON or a zlib-compressed file to stream.

The thin client compresses in memory; here the problem is streamed from its source through
``zlib.compressobj`` into a temporary file on disk (a presigned PUT, and the self-hosted server,
need the exact Content-Length, which a compressed stream only knows at its end), then streamed on.
Memory stays at about one chunk whatever the problem size. Never pickle: the problem is JSON.
Small problems are kept as compact JSON bytes, exactly the bytes the inline limit measured and the
request will carry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.problems.mps import is_mps_uri, staged_mps_problem
from airflow_provider.protocol import rules
from airflow_provider.protocol.cuopt import MAX_INLINE_BYTES, needs_asset, serialize_problem
from airflow_provider.utils import uris
from airflow_provider.utils.payloads import JsonShapeCheck


@dataclass(frozen=True)
class PreparedProblem:
    """Either ``data`` (inline compact JSON bytes) or ``asset_path`` (compressed file to upload)."""

    what: str
    raw_size: int
    data: bytes | None = None
    asset_path: Path | None = None
    asset_size: int = 0

    @property
    def is_asset(self) -> bool:
        return self.asset_path is not None


def _looks_like_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


@contextlib.contextmanager
def prepare_problem(
    problem: Any = None, problem_uri: str | None = None, *, mps_format: str | None = None
) -> Iterator[PreparedProblem]:
    """Validate and stage a problem before any network call; yields a :class:`PreparedProblem`.

    Problems of at most ``MAX_INLINE_BYTES`` of compact JSON stay inline; larger ones (and files
    already zlib-compressed) are staged as a zlib file. An MPS file (``.mps``/``.mps.gz``/``.mps.bz2``,
    or any name with ``mps_format``) is first converted to LPData JSON on this machine (HiGHS), the
    same for both cuOpt backends.
    """
    rules.exactly_one(("problem", problem), ("problem_uri", problem_uri), "a dict, or a path or URI")
    if problem_uri is not None and (mps_format or is_mps_uri(problem_uri)):
        with staged_mps_problem(problem_uri, mps_format=mps_format or "auto") as staged:  # type: ignore[arg-type]
            with prepare_problem(problem_uri=str(staged.path)) as prepared:
                yield dataclasses.replace(prepared, what=f"MPS problem {staged.source}")
        return
    if problem is not None:
        data = serialize_problem(problem)
        if not needs_asset(len(data)):
            yield PreparedProblem("the problem", len(data), data=data)
            return
        with _compressed(io.BytesIO(data), "the problem") as (path, size):
            yield PreparedProblem("the problem", len(data), asset_path=path, asset_size=size)
        return
    assert problem_uri is not None
    what = f"problem {uris.describe(problem_uri)}"
    with uris.open_input(problem_uri) as source:
        head = source.fileobj.read(2)
        source.fileobj.seek(0)
        if _looks_like_zlib(head):  # already compressed JSON: upload as it is
            needs_asset(source.size)
            with _spooled_copy(source) as path:
                yield PreparedProblem(what, source.size, asset_path=path, asset_size=source.size)
            return
        if source.size <= MAX_INLINE_BYTES:
            raw = source.fileobj.read()
            try:
                data = serialize_problem(json.loads(raw))  # an object (or a list for batch LP)
            except ValueError as exc:
                raise InvalidInputError(f"{what} is not valid JSON: {exc}") from exc
            if not needs_asset(len(data)):
                yield PreparedProblem(what, source.size, data=data)
                return
            source.fileobj.seek(0)
        needs_asset(source.size)
        with _compressed(source.fileobj, what) as (path, size):
            yield PreparedProblem(what, source.size, asset_path=path, asset_size=size)


@contextlib.contextmanager
def _compressed(fileobj: Any, what: str) -> Iterator[tuple[Path, int]]:
    """zlib (level 1, as the thin client) ``fileobj`` into a temp file, checking it looks like JSON."""
    check = JsonShapeCheck(what)
    compressor = zlib.compressobj(zlib.Z_BEST_SPEED)
    with tempfile.TemporaryDirectory(prefix="cuopt-asset-") as tmp:
        path = Path(tmp) / "problem.json.zlib"
        with open(path, "wb") as out:
            while chunk := fileobj.read(uris.CHUNK_SIZE):
                check.feed(chunk)
                out.write(compressor.compress(chunk))
            out.write(compressor.flush())
        check.finish()
        yield path, path.stat().st_size


@contextlib.contextmanager
def _spooled_copy(source: uris.InputSource) -> Iterator[Path]:
    """Local files are used in place; remote ones are copied to a temp file (one chunk in memory)."""
    if uris.is_local(source.uri):
        yield uris.local_path(source.uri)
        return
    with tempfile.TemporaryDirectory(prefix="cuopt-asset-") as tmp:
        path = Path(tmp) / "problem.zlib"
        with open(path, "wb") as out:
            for chunk in source.chunks():
                out.write(chunk)
        yield path
