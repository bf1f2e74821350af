"""Reading inputs from, and writing outputs to, any smart-open URI without holding payloads in memory.

A "URI" is a local path, ``file://``, ``s3://``, ``gs://``, ``https://`` or anything else
smart-open supports. Remote credentials come from the usual environment of each transport (boto3's
chain for S3, google-auth for GCS). Local outputs are written to a temporary sibling and renamed
into place, remote ones are committed by smart-open only on a clean close, so a failed transfer
never leaves a half-written solution behind for downstream tasks to read.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO
from urllib.parse import urlsplit

from airflow_provider.exceptions import InvalidInputError, UnsafeIdentifierError
from airflow_provider.utils.ids import safe_id
from airflow_provider.utils.redact import redact_url

CHUNK_SIZE = 1024 * 1024


def scheme(uri: str) -> str:
    """The URI scheme, "" for plain local paths (Windows drive letters count as local)."""
    parts = urlsplit(uri)
    return "" if len(parts.scheme) <= 1 else parts.scheme.lower()


def is_local(uri: str) -> bool:
    return scheme(uri) in ("", "file")


def local_path(uri: str) -> Path:
    """Filesystem path of a local URI (``file:///x`` or ``/x``)."""
    if scheme(uri) == "file":
        return Path(urlsplit(uri).path)
    return Path(uri).expanduser()


def describe(uri: str) -> str:
    """A loggable form of ``uri`` (query strings of presigned https URLs removed)."""
    return redact_url(uri) if scheme(uri) in ("http", "https") else uri


def join(base: str, *names: str) -> str:
    """Append relative path components to a folder URI or path, with exactly one "/" between them.

    Every component stays inside ``base``: names that are absolute, contain ``..`` or ``.``
    segments, backslashes or control characters are refused (:class:`UnsafeIdentifierError`), so
    no name a service sent (an id, an archive member) can place a file elsewhere.
    """
    out = base
    for name in names:
        segments = str(name).split("/")
        if not segments or not all(segments):
            raise UnsafeIdentifierError(f"path component {str(name)[:80]!r} is empty or absolute")
        for segment in segments:
            safe_id(segment, "path component")
        out = out.rstrip("/") + "/" + "/".join(segments)
    return out


def is_folder_uri(uri: str) -> bool:
    """A trailing slash marks a folder, as in ``s3://bucket/solutions/``; local dirs count too."""
    return uri.endswith("/") or (is_local(uri) and local_path(uri).is_dir())


def output_target(output_uri: str, result_id: str, suffix: str = ".json") -> str:
    """Where a run's/request's result goes: ``output_uri`` itself, or ``<id><suffix>`` inside a folder URI.

    The one folder-naming rule of every writer; the id is validated first, so a service-chosen id can
    never name a file outside the folder.
    """
    if not is_folder_uri(output_uri):
        return output_uri
    return join(output_uri, safe_id(result_id, "result id") + suffix)


def _smart_open(uri: str, mode: str) -> IO[bytes]:
    import smart_open  # imported lazily: it pulls in transports

    return smart_open.open(uri, mode, compression="disable")


def open_for_read(uri: str) -> IO[bytes]:
    """A plain binary reader for any URI (no decompression by extension)."""
    return open(local_path(uri), "rb") if is_local(uri) else _smart_open(uri, "rb")


@dataclass
class InputSource:
    """An opened input: a binary file object plus its exact size in bytes."""

    uri: str
    fileobj: BinaryIO
    size: int
    #: The bytes are compact JSON already (a dict the provider serialised itself).
    compact_json: bool = False

    def rewind(self) -> None:
        """Back to the first byte, to restart a transfer (every source here is seekable)."""
        self.fileobj.seek(0)

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self.fileobj.read(chunk_size):
            yield chunk


@contextlib.contextmanager
def open_input(uri: str) -> Iterator[InputSource]:
    """Open ``uri`` for reading and learn its size without reading it.

    Local files are stat'ed; seekable remote readers (S3, GCS, ranged HTTP) report the size by
    seeking to the end. A source that cannot seek is first spooled to a temporary file on disk
    (never to memory) so an upload can still send an exact Content-Length.
    """
    if is_local(uri):
        path = local_path(uri)
        if not path.exists():
            raise InvalidInputError(f"Input file {path} does not exist; check input_uri.")
        if path.is_dir():
            raise InvalidInputError(
                f"Input {path} is a directory; pass a file (or input_format='multi-file')."
            )
        with open(path, "rb") as f:
            yield InputSource(uri, f, path.stat().st_size)
        return
    try:
        reader = _smart_open(uri, "rb")
    except Exception as exc:  # each transport raises its own "not found"
        raise InvalidInputError(f"Cannot open input {describe(uri)}: {type(exc).__name__}: {exc}") from exc
    with contextlib.closing(reader):
        if reader.seekable():
            try:
                size = reader.seek(0, io.SEEK_END)
                reader.seek(0)
            except (OSError, ValueError):
                size = None
            if size is not None:
                yield InputSource(uri, reader, size)
                return
        with tempfile.TemporaryFile(prefix="airflow-provider-optimization-") as spool:
            shutil.copyfileobj(reader, spool, CHUNK_SIZE)
            size = spool.tell()
            spool.seek(0)
            yield InputSource(uri, spool, size)  # type: ignore[arg-type]


@contextlib.contextmanager
def atomic_output(uri: str) -> Iterator[BinaryIO]:
    """Open ``uri`` for writing; the object appears only if the block finishes without error."""
    if is_local(uri):
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return
    with contextlib.ExitStack() as stack:
        transport_params = None
        if scheme(uri) == "s3":
            # One PUT from a disk buffer instead of smart-open's default 50 MiB in-memory parts sent
            # one after another: flat memory and about twice as fast (docs/benchmarks.md). S3 takes
            # single objects up to 5 GB, far above any solver output.
            buffer = stack.enter_context(tempfile.TemporaryFile(prefix="airflow-provider-optimization-"))
            transport_params = {"multipart_upload": False, "writebuffer": buffer}
        import smart_open

        writer = smart_open.open(uri, "wb", compression="disable", transport_params=transport_params)
        try:
            yield writer  # type: ignore[misc]
        except BaseException:
            # smart-open's writers abort (multipart) uploads instead of committing them.
            terminate = getattr(writer, "terminate", None)
            if terminate is not None:
                with contextlib.suppress(Exception):
                    terminate()
            raise
        else:
            writer.close()


def normalized(uri: str) -> str:
    """Absolute form of local paths (for XCom), other URIs unchanged."""
    return str(local_path(uri).resolve()) if is_local(uri) else uri
