"""Guarded unpacking of archives received from a service.

A solver's multi-file output arrives as tar.gz (Nextmv) and large cuOpt results as a zip (NVCF).
Both come from outside, so every member name is checked (no absolute paths, no ``..``, no links,
no devices) and sizes are bounded *while* decompressing, which defeats zip/tar bombs whatever the
headers claim. Members are streamed straight to the destination URI, never held in memory.
"""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
from typing import BinaryIO

from airflow_provider.exceptions import UnsafeArchiveError
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
                f"archive expands to more than {self.max_total_bytes} bytes; refusing to extract (zip bomb?)"
            )


def _copy_bounded(src: BinaryIO, dest_uri: str, budget: _Budget) -> None:
    with uris.atomic_output(dest_uri) as out:
        while chunk := src.read(uris.CHUNK_SIZE):
            budget.add(len(chunk))
            out.write(chunk)


def extract_tar_stream(
    fileobj: BinaryIO,
    dest_folder: str,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[str]:
    """Unpack a (gzipped) tar read sequentially from ``fileobj`` into the folder URI ``dest_folder``.

    Only regular files and directories are accepted. Returns the written file URIs in archive order.
    """
    budget = _Budget(max_total_bytes, max_members)
    written: list[str] = []
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
                dest = uris.join(dest_folder, name)
                _copy_bounded(src, dest, budget)
                written.append(uris.normalized(dest))
    except tarfile.TarError as exc:
        raise UnsafeArchiveError(f"the output archive is not a valid tar.gz: {exc}") from exc
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


def copy_bounded_stream(
    src: BinaryIO,
    dest_uri: str,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    expected_bytes: int | None = None,
) -> int:
    """Copy ``src`` to ``dest_uri`` atomically, failing once more than ``max_total_bytes`` came out.

    With ``expected_bytes``, a copy of any other length is refused *before* the object appears: a
    body cut short in transit never passes for a complete one.
    """
    budget = _Budget(max_total_bytes, 1)
    with uris.atomic_output(dest_uri) as out:
        while chunk := src.read(uris.CHUNK_SIZE):
            budget.add(len(chunk))
            out.write(chunk)
        if expected_bytes is not None and budget.total != expected_bytes:
            from airflow_provider.exceptions import MalformedResponseError

            raise MalformedResponseError(
                f"download of {uris.describe(dest_uri)} ended after {budget.total:,} of {expected_bytes:,} bytes"
            )
    return budget.total
