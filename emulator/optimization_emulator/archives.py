"""tar.gz in and out of runs: guarded extraction of uploaded inputs, packing of output folders.

Multi-file (and csv-archive) payloads are gzipped tarballs made by the client. Extraction refuses
absolute member names and applies the standard library's ``data`` filter (no ``..``, no links or
special files pointing out of the folder, no setuid bits) to every member *before* anything is
written, and bounds the member count and the unpacked size so a small gzip bomb cannot fill the disk.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

MAX_MEMBERS = 100_000


class ArchiveError(ValueError):
    """The archive is unreadable, unsafe or too big; the message says which."""


def extract_tar_gz(archive: Path, destination: Path, max_bytes: int) -> list[str]:
    """Unpacks ``archive`` into ``destination``; returns the member names."""
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            checked, total = [], 0
            for member in tar:
                if member.name.startswith("/"):  # the data filter would strip the slash; refuse instead
                    raise ArchiveError(f"unsafe archive member: absolute path {member.name!r}")
                checked.append(tarfile.data_filter(member, str(destination)))
                total += member.size
                if len(checked) > MAX_MEMBERS:
                    raise ArchiveError(f"archive has more than {MAX_MEMBERS:,} members")
                if total > max_bytes:
                    raise ArchiveError(f"archive unpacks to more than {max_bytes:,} bytes")
            tar.extractall(destination, members=checked, filter="data")
    except tarfile.FilterError as exc:
        raise ArchiveError(f"unsafe archive member: {exc}") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"input is not a readable tar.gz archive: {exc}") from exc
    return [member.name for member in checked]


def pack_tar_gz(folder: Path, archive: Path) -> None:
    """Packs the contents of ``folder`` (names relative to it) into ``archive``; a missing folder
    gives an empty archive. Links are stored as links, never followed."""
    with tarfile.open(archive, "w:gz") as tar:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
