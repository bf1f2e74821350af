"""Files on the self-hosted server's disk: ``CUOPT-DATA-FILE`` problems and large-result files.

A client may name a problem file relative to ``CUOPT_DATA_DIR`` instead of sending a body, and the
server writes results of ``CUOPT_MAX_RESULT`` KB or more to ``CUOPT_RESULT_DIR`` instead of answering
them (shared/reference/cuopt_selfhosted.md §2.2, §4.2). Both names come from a request header, so both
are checked for containment: an absolute path, ``..`` or a link leading out of the directory never
reaches the file system.

Standard library only: the solver processes write result files with it too.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from optimization_emulator.cuopt.schema import CuOptError


def _inside(root: Path, name: str) -> Path | None:
    """``root / name`` if ``name`` is relative and stays inside ``root`` (links resolved), else None."""
    if not name or os.path.isabs(name) or "\x00" in name:
        return None
    base = root.resolve()
    path = (base / name).resolve()
    return path if path != base and path.is_relative_to(base) else None


def data_file(data_dir: Path | None, name: str) -> Path:
    """The problem file ``CUOPT-DATA-FILE: name`` names; 400 (as the real server) when it cannot be used."""
    if data_dir is None:
        raise CuOptError("CUOPT-DATA-FILE was given but the server has no data directory (CUOPT_DATA_DIR)")
    if os.path.isabs(name):
        raise CuOptError(f"CUOPT-DATA-FILE {name!r} must be a path relative to the server's data directory")
    path = _inside(data_dir, name)
    if path is None:
        raise CuOptError(f"CUOPT-DATA-FILE {name!r} is outside the server's data directory")
    if not path.exists():
        raise CuOptError(f"CUOPT-DATA-FILE {name!r} does not exist in the server's data directory")
    if not path.is_file():
        raise CuOptError(f"CUOPT-DATA-FILE {name!r} is not a regular file")
    return path


def result_file_name(result_dir: Path, requested: str | None, data_file_name: str | None) -> str:
    """The name a large result gets: ``CUOPT-RESULT-FILE`` when it is a valid relative name (an
    absolute or escaping one is ignored, as the real server does), else the data file's base name
    plus ``.result``, else a random UUID."""
    if requested and _inside(result_dir, requested) is not None:
        return requested
    if data_file_name:
        return os.path.basename(data_file_name) + ".result"
    return str(uuid.uuid4())


def write_result_file(result_dir: Path, name: str, data: bytes, mode: int) -> None:
    """Writes ``data`` to ``result_dir/name`` with file mode ``mode`` (whole or not at all)."""
    path = _inside(result_dir, name)
    if path is None:  # result_file_name only hands out contained names
        raise CuOptError(f"result file name {name!r} is outside the result directory", 500)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.chmod(partial, mode)
    partial.replace(path)
