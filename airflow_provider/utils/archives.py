"""Guarded unpacking of archives received from a service.

A solver's multi-file output arrives as tar.gz (Nextmv) and large cuOpt results as a zip (NVCF).
Both come from outside, so every member name is checked (no absolute paths, no ``..``, no links,
no devices) and sizes are bounded *while* decompressing, which defeats zip/tar bombs whatever the
headers claim. Members are streamed (never held in memory) into a staging folder first, and reach
the destination only once the whole archive passed.
"""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from airflow_provider.exceptions import MalformedResponseError, UnsafeArchiveError
from airflow_provider.utils import uris

DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
DEFAULT_MAX_MEMBERS = 10_000


def safe_member_name(name: str) -> str:
    """Normalise an archive member name, or raise if it could escape the destination folder."""
    cleaned = name.replace("\\", "/")
    if not cleaned or cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path; refusing to extract")
    norm = posixpath.normpath(cleaned)
    if norm == ".." or norm.startswith("../"):
        raise UnsafeArchiveError(
            f"archive member {name!r} escapes the destination folder; refusing to extract"
        )
    if "\x00" in norm:
        raise UnsafeArchiveError(f"archive member {name!r} contains a NUL byte")
    return norm


class _Budget:
    """Counts bytes written across members and fails as soon as a bound is crossed."""

    def __init__(self, max_total_bytes: int, max_members: int) -> None:
        self.max_total_bytes = max_total_bytes
        self.max_members = max_members
        self.total = 0
        self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise UnsafeArchiveError(f"archive has more than {self.max_members} members; refusing to extract")

    def add(self, n: int) -> None:
        self.total += n
        if self.total > self.max_total_bytes:
            raise UnsafeArchiveError(
                f"more than {self.max_total_bytes:,} bytes came out; stopped there (zip bomb or endless body?)"
            )


def read_chunks(fileobj: BinaryIO, chunk_size: int = uris.CHUNK_SIZE) -> Iterator[bytes]:
    """A readable file object as an iterator of chunks (the shape :func:`copy_bounded` takes)."""
    while chunk := fileobj.read(chunk_size):
        yield chunk


def copy_bounded(
    chunks: Iterable[bytes],
    dest_uri: str,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    expected_bytes: int | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
    on_end: Callable[[], None] | None = None,
    budget: _Budget | None = None,
) -> int:
    """The one bounded copy: ``chunks`` to ``dest_uri`` atomically, failing once more than
    ``max_total_bytes`` came out (the object never appears then). Returns the bytes written.

    With ``expected_bytes``, a copy of any other length is refused *before* the object appears: a
    body cut short in transit never passes for a complete one. ``on_chunk`` sees every chunk before
    it is written (a streaming parser, a checksum) and ``on_end`` runs after the last one, still
    before the object appears (raise there to refuse it); ``budget`` is shared across archive members.
    """
    budget = budget or _Budget(max_total_bytes, 1)
    written = 0
    with uris.atomic_output(dest_uri) as out:
        for chunk in chunks:
            budget.add(len(chunk))
            written += len(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            out.write(chunk)
        if expected_bytes is not None and written != expected_bytes:
            raise MalformedResponseError(
                f"download of {uris.describe(dest_uri)} ended after {written:,} of {expected_bytes:,} bytes"
            )
        if on_end is not None:
            on_end()
    return written


def copy_bounded_stream(
    src: BinaryIO,
    dest_uri: str,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    expected_bytes: int | None = None,
) -> int:
    """:func:`copy_bounded` from a readable file object."""
    return copy_bounded(
        read_chunks(src), dest_uri, max_total_bytes=max_total_bytes, expected_bytes=expected_bytes
    )


def extract_tar_stream(
    fileobj: BinaryIO,
    dest_folder: str,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[str]:
    """Unpack a (gzipped) tar read sequentially from ``fileobj`` into the folder URI ``dest_folder``.

    Only regular files and directories are accepted. Members are first unpacked into a private
    staging folder and moved into ``dest_folder`` only once the *whole* archive passed every check,
    so a refused archive (a ``../`` member after good ones, too many members, a bomb) leaves nothing
    behind. Returns the written file URIs in archive order.
    """
    budget = _Budget(max_total_bytes, max_members)
    with tempfile.TemporaryDirectory(prefix="archive-staging-") as staging:
        names: list[str] = []
        try:
            with tarfile.open(fileobj=fileobj, mode="r|*") as archive:
                for member in archive:
                    budget.member(member.name)
                    name = safe_member_name(member.name)
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise UnsafeArchiveError(
                            f"archive member {member.name!r} is a link or special file; refusing to extract"
                        )
                    src = archive.extractfile(member)
                    if src is None:  # pragma: no cover - isfile() members always have data
                        continue
                    copy_bounded(read_chunks(src), uris.join(staging, name), budget=budget)
                    names.append(name)
        except tarfile.TarError as exc:
            raise UnsafeArchiveError(f"the output archive is not a valid tar.gz: {exc}") from exc
        written = []
        for name in dict.fromkeys(names):  # every check passed: move the members into place
            dest = uris.join(dest_folder, name)
            with open(Path(staging) / name, "rb") as staged:
                copy_bounded(read_chunks(staged), dest, max_total_bytes=max_total_bytes)
            written.append(uris.normalized(dest))
    return written


def open_zip_member(
    archive: zipfile.ZipFile,
    preferred: tuple[str, ...],
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> tuple[str, BinaryIO]:
    """Pick the member to read from a result zip, after checking every member name and size header.

    ``preferred`` names are tried in order; otherwise the only member is used. The returned stream
    must still be read through :func:`copy_bounded_stream`, because headers can lie about sizes.
    """
    infos = archive.infolist()
    if len(infos) > max_members:
        raise UnsafeArchiveError(f"result zip has {len(infos)} members; refusing to read it")
    by_name = {}
    for info in infos:
        name = safe_member_name(info.filename)
        if info.file_size > max_total_bytes:
            raise UnsafeArchiveError(
                f"result zip member {info.filename!r} declares {info.file_size} bytes, over the "
                f"{max_total_bytes}-byte bound; refusing to extract"
            )
        if not info.is_dir():
            by_name[name] = info
    for name in preferred:
        if name in by_name:
            return name, archive.open(by_name[name])  # type: ignore[return-value]
    if len(by_name) == 1:
        ((name, info),) = by_name.items()
        return name, archive.open(info)  # type: ignore[return-value]
    raise UnsafeArchiveError(
        f"result zip has no member named {' or '.join(preferred)} and {len(by_name)} candidates: "
        f"{sorted(by_name)[:10]}"
    )
