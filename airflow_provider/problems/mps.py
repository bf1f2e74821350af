"""LP/MILP problems in MPS files, converted on the worker's CPU into cuOpt's JSON ``LPData``.

cuOpt's REST APIs (the self-hosted server and NVCF) take LP/MILP problems only as ``LPData`` JSON
(a CSR matrix, bounds, objective); both backends share that schema. Its official clients convert
MPS files with the GPU ``cuopt`` package; here HiGHS (``highspy``, the ``mps`` extra) reads the file
on the CPU, so a worker without a GPU can send MPS files to either backend.

:func:`staged_mps_problem` works in steps, each for a reason:

1. **Stage.** The URI is copied to a local temporary file in chunks (HiGHS reads local paths only),
   at most ``max_bytes`` of it; ``.gz``/``.bz2`` are decompressed from that local copy under the same
   cap (a small archive can expand without limit), so a network failure stays a network error
   (retryable) and only bad data becomes :class:`InvalidInputError`. Local plain files are linked,
   not copied.
2. **Scan.** One streaming pass over the lines finds what HiGHS's readers would drop or misread
   *silently*: sections LPData cannot express (quadratic constraints, SOS, cones, indicators,
   ``OBJNAME``, ...), quadratic objectives (refused before a large QP is parsed), semi-continuous
   bounds, and an inline ``OBJSENSE MAXIMIZE``, which HiGHS's free reader ignores.
3. **Read** with HiGHS, its log captured (not printed) so its own error message can be quoted
   (:mod:`airflow_provider.problems._mps_highs`).
4. **Write** the JSON in chunks straight from HiGHS's arrays; neither the JSON nor a second copy of
   the model is built in Python.

Fixed vs free MPS: HiGHS's free reader is the default and reads fixed-format files too, as long as
names have no spaces; when it sees names with spaces in ROWS/COLUMNS it switches to its fixed
reader by itself. ``mps_format="fixed"`` forces the fixed reader, for fixed files whose
RHS/RANGES/BOUNDS set names contain spaces (the free reader misreads those). The fixed reader does
not know the ``OBJSENSE`` section, so it is handed a copy without it (the scan keeps the sense).

Conventions are HiGHS's (and classic MPS's): an integer column from ``MARKER INTORG`` without
bounds is binary, ``[0, 1]``; a constant on the objective row in RHS is the negated objective
offset; N rows other than the first (free rows) constrain nothing and are dropped. Infinite
bounds (HiGHS treats ``|v| >= 1e20`` as infinite) are written as cuOpt's ``"inf"``/``"ninf"``.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import gzip
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.utils import uris

#: File name endings taken as MPS (``.qps`` is MPS with a quadratic objective: refused with a reason).
MPS_SUFFIXES = (".mps", ".qps")
#: Compressions decompressed while staging (the official cuOpt client accepts the same two).
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open}
#: Default cap on the staged (decompressed) MPS file: HiGHS then holds the model in memory, about
#: a third of the text's size, so this keeps a worker's memory in the low GiB.
MAX_MPS_BYTES = 4 * 1024**3
INSTALL_HINT = "pip install 'airflow-provider-optimization[mps]'"
#: MPS lines are short; a longer "line" means this is not an MPS file (and bounds the scan's memory).
MAX_LINE = 1024 * 1024

_QP_SECTIONS = {"QUADOBJ", "QMATRIX", "QSECTION"}
_SUPPORTED_SECTIONS = {"NAME", "OBJSENSE", "ROWS", "COLUMNS", "RHS", "RANGES", "BOUNDS", "ENDATA"}
_UNSUPPORTED_SECTIONS = {
    "QCMATRIX": "quadratic constraints",
    "QCSECTION": "quadratic constraints",
    "CSECTION": "conic constraints",
    "SOS": "special ordered sets",
    "INDICATORS": "indicator constraints",
    "LAZYCONS": "lazy constraints",
    "USERCUTS": "user cuts",
    "GENCONS": "general constraints",
    "PWLOBJ": "a piecewise-linear objective",
    "BRANCH": "branching priorities",
    "OBJNAME": "an OBJNAME section (HiGHS takes the first N row as the objective: put that row first in "
    "ROWS and drop OBJNAME)",
}
_KEYWORDS = _SUPPORTED_SECTIONS | _QP_SECTIONS | set(_UNSUPPORTED_SECTIONS)
_SEMI_BOUNDS = {"SC", "SI"}
#: Bound types HiGHS's fixed-format reader skips without a warning (and mangles the column's bounds).
_FIXED_READER_IGNORES = {"BV", "LI", "UI"}
_VALUED_BOUNDS = {"UP", "LO", "FX", "LI", "UI"}
_SENSES = {"MAX": True, "MAXIMIZE": True, "MIN": False, "MINIMIZE": False}


@dataclasses.dataclass(frozen=True)
class StagedProblem:
    """A converted problem: ``path`` is the LPData JSON file (``size`` bytes), valid inside the block."""

    source: str
    path: Path
    size: int
    num_variables: int
    num_constraints: int
    num_nonzeros: int
    is_milp: bool


def is_mps_uri(uri: str) -> bool:
    """Whether ``uri`` names an MPS file: ``.mps`` or ``.qps``, optionally ``.gz``/``.bz2``, any case.

    Decided by the name only (a query string, as on presigned URLs, is ignored). Fixed and free format
    share the extension; the reader tells them apart (see the module docstring).
    """
    name = _file_name(uri)
    for compression in ("", *COMPRESSIONS):
        if name.endswith(compression) and name[: len(name) - len(compression)].endswith(MPS_SUFFIXES):
            return True
    return False


@contextlib.contextmanager
def staged_mps_problem(
    uri: str,
    *,
    solver_config: Mapping[str, Any] | None = None,
    mps_format: Literal["auto", "fixed"] = "auto",
    open_kwargs: Mapping[str, Any] | None = None,
    max_bytes: int = MAX_MPS_BYTES,
) -> Iterator[StagedProblem]:
    """Convert the MPS file at ``uri`` into a temporary LPData JSON file; removed when the block ends.

    For large problems: the JSON is written in chunks and can be streamed to the service from
    ``path``. ``solver_config`` is copied into the JSON as is; ``open_kwargs`` go to
    ``smart_open.open`` for remote URIs (``transport_params``, say); ``max_bytes`` caps the staged,
    decompressed file. Raises :class:`InvalidInputError` (before any service call) for a missing or
    unreadable file, corrupt MPS (quoting HiGHS), a QP or anything else LPData cannot express, a
    file over ``max_bytes``, and when ``highspy`` is not installed.
    """
    from airflow_provider.problems import _mps_highs

    if mps_format not in ("auto", "fixed"):
        raise InvalidInputError(f"mps_format must be 'auto' or 'fixed', not {mps_format!r}.")
    config = _mps_highs.config_json(solver_config)
    try:
        import highspy
    except ImportError as exc:
        raise InvalidInputError(
            f"Reading MPS files needs HiGHS (highspy), which is not installed: {INSTALL_HINT}"
        ) from exc
    source = uris.describe(uri)
    with tempfile.TemporaryDirectory(prefix="airflow-provider-optimization-mps-") as tmp:
        mps = _stage(uri, source, Path(tmp), open_kwargs, max_bytes)
        scan = _scan(mps, source)
        highs = _mps_highs.read(highspy, mps, source, mps_format, scan.integer_bounds, scan.bad_number)
        try:
            out = Path(tmp) / "problem.json"
            with open(out, "w", encoding="ascii", buffering=uris.CHUNK_SIZE) as f:
                counts = _mps_highs.write_lpdata(highspy, highs, f, scan.maximize, source, config)
        finally:
            highs.clear()  # frees the model before the caller uploads
        mps.unlink()
        yield StagedProblem(source, out, out.stat().st_size, *counts)


def mps_to_cuopt(
    uri: str,
    *,
    solver_config: Mapping[str, Any] | None = None,
    mps_format: Literal["auto", "fixed"] = "auto",
    open_kwargs: Mapping[str, Any] | None = None,
    max_bytes: int = MAX_MPS_BYTES,
) -> dict[str, Any]:
    """The MPS file at ``uri`` as a cuOpt ``LPData`` dict (for small problems and tests).

    The whole problem is held in Python objects (several times the JSON's size); for large ones use
    :func:`staged_mps_problem` and stream its file. Arguments and errors as there.
    """
    with staged_mps_problem(
        uri, solver_config=solver_config, mps_format=mps_format, open_kwargs=open_kwargs, max_bytes=max_bytes
    ) as staged:
        with open(staged.path, encoding="ascii") as f:
            return json.load(f)


# ------------------------------------------------------------------------------------------ stage
def _file_name(uri: str) -> str:
    """The last path component, lower-cased, without any query string."""
    path = str(uris.local_path(uri)) if uris.is_local(uri) else urlsplit(uri).path
    return path.rsplit("/", 1)[-1].lower()


def _too_large(source: str, max_bytes: int) -> InvalidInputError:
    return InvalidInputError(
        f"MPS file {source} is larger than max_bytes={max_bytes:,} bytes (decompressed); raise max_bytes "
        "if the worker has the memory for HiGHS to hold it."
    )


def _copy(src: IO[bytes], out: IO[bytes], source: str, max_bytes: int) -> None:
    """Chunked copy that stops as soon as more than ``max_bytes`` arrived."""
    total = 0
    while chunk := src.read(uris.CHUNK_SIZE):
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(source, max_bytes)
        out.write(chunk)


def _open(uri: str, source: str, open_kwargs: Mapping[str, Any] | None) -> IO[bytes]:
    """A binary reader of the raw bytes (no decompression by smart-open: that is done locally)."""
    if uris.is_local(uri):
        path = uris.local_path(uri)
        if not path.is_file():
            raise InvalidInputError(f"MPS file {path} does not exist or is not a file; check the URI.")
        return open(path, "rb")
    import smart_open  # imported lazily: it pulls in transports

    try:
        return smart_open.open(uri, "rb", compression="disable", **dict(open_kwargs or {}))
    except Exception as exc:  # each transport raises its own "not found"
        raise InvalidInputError(f"Cannot open MPS file {source}: {type(exc).__name__}: {exc}") from exc


def _stage(uri: str, source: str, tmp: Path, open_kwargs: Mapping[str, Any] | None, max_bytes: int) -> Path:
    """``tmp/problem.mps``: a link to a local plain file, else a chunked copy, decompressed locally."""
    target = tmp / "problem.mps"  # HiGHS picks its reader by the extension
    opener = next((op for ext, op in COMPRESSIONS.items() if _file_name(uri).endswith(ext)), None)
    if uris.is_local(uri) and opener is None:
        path = uris.local_path(uri)
        with _open(uri, source, None):  # a clear error for a missing file or a directory
            pass
        if path.stat().st_size > max_bytes:
            raise _too_large(source, max_bytes)
        os.symlink(path.resolve(), target)
        return target
    packed = target if opener is None else tmp / "problem.packed"
    if uris.is_local(uri):
        packed = uris.local_path(uri)
        with _open(uri, source, None):
            pass
    else:
        with _open(uri, source, open_kwargs) as src, open(packed, "wb") as out:
            _copy(src, out, source, max_bytes)
        if opener is None:
            return target
    try:
        with opener(packed, "rb") as unpacked, open(target, "wb") as out:
            _copy(unpacked, out, source, max_bytes)
    except (OSError, EOFError) as exc:  # local data only here: a corrupt or truncated archive
        raise InvalidInputError(f"Cannot decompress MPS file {source}: {exc}") from exc
    finally:
        if packed.parent == tmp:
            packed.unlink(missing_ok=True)
    return target


# ------------------------------------------------------------------------------------------- scan
def section_header(line: bytes) -> str | None:
    """The section a line opens (headers start in column 1), else None."""
    if line[:1] in b" \t*\r\n" or not line.strip():
        return None
    head = line.split()[0].decode("ascii", "replace").upper()
    return head if head in _KEYWORDS else None


@dataclasses.dataclass(frozen=True)
class _Scan:
    """What the scan learnt: the sense OBJSENSE states (True: maximize; None: none), whether there are
    BV/LI/UI bounds (only HiGHS's free reader knows them), and the first line, read as free format,
    whose value field is not a number ("" if none)."""

    maximize: bool | None
    integer_bounds: bool
    bad_number: str


def _scan(path: Path, source: str) -> _Scan:
    """One pass over the lines for what HiGHS would drop or misread silently; refuses it with a reason."""
    sections: set[str] = set()
    section, quadratic, maximize, bad_number = "", 0, None, ""
    bound_types: set[str] = set()
    with open(path, "rb") as f:
        while line := f.readline(MAX_LINE):
            if len(line) == MAX_LINE and not line.endswith(b"\n"):
                raise InvalidInputError(f"{source} is not an MPS file: it has a line over {MAX_LINE} bytes.")
            words = line.split()
            if not words or line.startswith(b"*"):
                continue
            head = words[0].decode("ascii", "replace").upper()
            header = section_header(line)
            if header:
                section = header
                sections.add(section)
                if section == "OBJSENSE" and len(words) > 1:
                    maximize = _SENSES.get(words[1].decode("ascii", "replace").upper())
            elif section in _QP_SECTIONS:
                quadratic += 1
            elif section == "BOUNDS":
                bound_types.add(head)
                if head in _VALUED_BOUNDS and len(words) >= 3:
                    bad_number = bad_number or _not_a_number(words[-1:], line)
            elif section == "COLUMNS" and b"'MARKER'" not in line:
                bad_number = bad_number or _not_a_number(words[2::2], line)
            elif section in ("RHS", "RANGES"):
                bad_number = bad_number or _not_a_number(words[1 + len(words) % 2 :: 2], line)
            elif section == "OBJSENSE" and maximize is None:
                maximize = _SENSES.get(head)
    unsupported = sorted(sections - _SUPPORTED_SECTIONS - _QP_SECTIONS)
    if unsupported:
        name = unsupported[0]
        raise InvalidInputError(
            f"MPS file {source} has a {name} section: {_UNSUPPORTED_SECTIONS[name]}, which cuOpt's LPData "
            "cannot express (LP and MILP only). Remove it, or solve the model with the cuOpt library."
        )
    if quadratic:
        refuse_qp(source)
    if bound_types & _SEMI_BOUNDS:
        refuse_semicontinuous(source)
    if "ROWS" not in sections or "COLUMNS" not in sections:
        raise InvalidInputError(
            f"{source} is not an MPS file: it has no ROWS or no COLUMNS section (section headers start in "
            "column 1)."
        )
    return _Scan(maximize, bool(bound_types & _FIXED_READER_IGNORES), bad_number)


def _not_a_number(words: list[bytes], line: bytes) -> str:
    """``line`` (for the message) when a value field is not a number, else "".

    HiGHS's free reader takes such a field as 0 without a word ("c1 four" is c1 = 0).
    """
    for word in words:
        try:
            float(word)
        except ValueError:
            return line.decode("ascii", "replace").strip()[:200]
    return ""


def refuse_qp(source: str) -> None:
    """QP is refused, not approximated: LPData has no quadratic terms at all."""
    raise InvalidInputError(
        f"MPS file {source} has a quadratic objective (QUADOBJ/QMATRIX/QSECTION): it is a QP. cuOpt's "
        "REST API (self-hosted server and NVCF) solves LP and MILP only: LPData has no quadratic terms, "
        "QP is offered by the cuOpt library and its gRPC interface. Linearize the objective, or solve the "
        "QP with the cuOpt Python library on a GPU machine (or another QP solver)."
    )


def refuse_semicontinuous(source: str) -> None:
    raise InvalidInputError(
        f"MPS file {source} has semi-continuous or semi-integer variables (SC/SI bounds), which cuOpt's "
        "LPData cannot express. Model them with a binary variable and two linear constraints."
    )
