"""Reading a staged MPS file with HiGHS and writing the model as cuOpt ``LPData`` JSON.

Split from :mod:`airflow_provider.problems.mps` (staging and the line scan) because this half is
the only one that touches ``highspy``; the caller imports ``highspy`` first so a missing extra is
one clear error.

Reading: HiGHS's log is captured (not printed) so its own error message can be quoted, and a
reader warning means HiGHS ignored part of the file, so the file is refused rather than converted
into a different problem. Writing: column data while the matrix is still column-wise, then
``ensureRowwise`` (HiGHS stores CSC; cuOpt wants CSR) and the rows, in chunks of :data:`CHUNK`.
Memory: HiGHS holds the model (unavoidable); the conversion adds one transient matrix copy
(``ensureRowwise``) and one chunk. CPU: about as long as HiGHS's own read, once more.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.problems.mps import refuse_qp, refuse_semicontinuous, section_header

#: Rows (and columns) fetched from HiGHS per call while writing.
CHUNK = 65536
_INTEGER = 1  # HighsVarType.kInteger
_SEMI = {2, 3}  # HighsVarType.kSemiContinuous, kSemiInteger

_BANNER = threading.Lock()
_banner_shown = False


def _new_highs(highspy: Any) -> Any:
    """A ``Highs`` object without its banner in the task log.

    The first ``Highs()`` of a process prints "Running HiGHS ..." from C++ to file descriptor 1,
    before any option can be set; ``output_flag`` cannot stop it. So stdout is pointed at
    ``/dev/null`` for that one constructor call (other threads' writes to fd 1 during those
    microseconds are lost: the price of a clean log).
    """
    global _banner_shown
    with _BANNER:
        if _banner_shown:
            return highspy.Highs()
        _banner_shown = True
        sys.stdout.flush()
        try:
            saved = os.dup(1)
        except OSError:  # no stdout at all: nothing to protect
            return highspy.Highs()
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
            return highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _read_once(highspy: Any, path: Path, source: str, free: bool) -> tuple[Any, Any, list[str]]:
    """HiGHS's ``readModel``: (Highs, status, its ERROR/WARNING lines, with ``source`` for the path)."""
    highs = _new_highs(highspy)
    log: list[str] = []
    local = str(path)

    def keep(event: Any) -> None:
        text = event.message.strip()
        if text.startswith(("ERROR", "WARNING")) and len(log) < 10:
            log.append(" ".join(text.replace(local, source).split()))

    highs.cbLogging.subscribe(keep)
    # Logging on, console off: the log reaches ``keep`` only.
    for option, value in (("output_flag", True), ("log_to_console", False), ("mps_parser_type_free", free)):
        highs.setOptionValue(option, value)
    status = highs.readModel(local)
    highs.cbLogging.clear()
    return highs, status, log


def _without_objsense(path: Path) -> Path | None:
    """A copy of ``path`` without its OBJSENSE section (None if it has none), for the fixed reader."""
    out, found, skipping = path.with_name("problem-fixed.mps"), False, False
    with open(path, "rb") as src, open(out, "wb") as dst:
        for line in src:
            header = section_header(line)
            if header:
                skipping = header == "OBJSENSE"
                found = found or skipping
            if not skipping:
                dst.write(line)
    if not found:
        out.unlink()
        return None
    return out


def read(highspy: Any, mps: Path, source: str, mps_format: str, integer_bounds: bool, bad_number: str) -> Any:
    """The model in ``mps`` read by HiGHS, or :class:`InvalidInputError` saying what is wrong.

    ``integer_bounds``: the file has BV/LI/UI bounds, which HiGHS's fixed reader ignores.
    ``bad_number``: a line whose value field (split at blanks) is not a number; HiGHS's free reader
    takes it as 0, so it is refused when the free reader read the file.
    """
    highs, status, log = _read_once(highspy, mps, source, free=mps_format != "fixed")
    switched = any("fixed format" in m for m in log)  # the free reader handed over to the fixed one
    fixed = mps_format == "fixed" or switched
    if status == highspy.HighsStatus.kError and fixed:
        # The fixed reader fails on an OBJSENSE section; the scan has kept the sense already.
        stripped = _without_objsense(mps)
        if stripped is not None:
            highs, status, log = _read_once(highspy, stripped, source, free=False)
            stripped.unlink()
    problems = [m for m in log if "fixed format" not in m]
    if status == highspy.HighsStatus.kError:
        raise InvalidInputError(
            f"HiGHS cannot read MPS file {source}: {'; '.join(problems) or 'no reason given'}."
        )
    if status != highspy.HighsStatus.kOk or problems:  # readModel answers kOk for many warnings
        raise InvalidInputError(
            f"HiGHS warned while reading MPS file {source} ({'; '.join(problems) or 'no detail'}): it "
            "skipped or changed part of the file, so the converted problem would not be the file's. "
            "Fix those lines."
        )
    if bad_number and not fixed:
        raise InvalidInputError(f"MPS file {source} has a value that is not a number: {bad_number!r}.")
    if highs.getHessianNumNz() > 0:
        refuse_qp(source)
    if highs.getNumCol() == 0:
        raise InvalidInputError(f"MPS file {source} has no variables (its COLUMNS section is empty).")
    if integer_bounds and (fixed or _names_have_spaces(highs)):
        raise InvalidInputError(
            f"MPS file {source} was read as fixed format (names with spaces, or mps_format='fixed'), and "
            "HiGHS's fixed-format reader ignores BV/LI/UI bounds. Use names without spaces (free format), "
            "or mark integers with MARKER INTORG/INTEND and UP/LO bounds."
        )
    _check_bounds(highspy, highs, source)
    return highs


def _names_have_spaces(highs: Any) -> bool:
    return any(" " in highs.getColName(j)[1] for j in range(highs.getNumCol())) or any(
        " " in highs.getRowName(i)[1] for i in range(highs.getNumRow())
    )


def _check_bounds(highspy: Any, highs: Any, source: str) -> None:
    """Refuse a variable whose lower bound exceeds its upper bound, naming it.

    Mostly an ``UP`` bound below zero without ``LO``/``MI``: MPS readers disagree (CPLEX makes the
    lower bound -inf, HiGHS keeps 0), so the file does not say which problem it is.
    """
    import numpy as np  # a dependency of highspy

    n = highs.getNumCol()
    for start in range(0, n, CHUNK):
        index = np.arange(start, min(start + CHUNK, n), dtype=np.int32)
        lower, upper = highs.getCols(len(index), index)[3:5]
        bad = np.flatnonzero(lower > upper)
        if len(bad):
            j = int(index[bad[0]])
            raise InvalidInputError(
                f"MPS file {source}: variable {highs.getColName(j)[1]!r} has lower bound {float(lower[bad[0]])!r} "
                f"above its upper bound {float(upper[bad[0]])!r}. An UP bound below 0 needs an explicit LO or MI "
                "bound (MPS readers disagree on the lower bound otherwise)."
            )


def config_json(solver_config: Mapping[str, Any] | None) -> str:
    """``,"solver_config":{...}`` to append to the LPData object, or "" without one."""
    if solver_config is None:
        return ""
    if not isinstance(solver_config, Mapping):
        raise InvalidInputError("solver_config must be a mapping (cuOpt's LPData solver_config).")
    try:
        return f',"solver_config":{json.dumps(dict(solver_config), allow_nan=False)}'
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"solver_config is not JSON: {exc}") from exc


def write_lpdata(
    highspy: Any, highs: Any, out: IO[str], maximize: bool | None, source: str, config: str
) -> tuple[int, int, int, bool]:
    """Stream the LPData object to ``out``; returns (variables, constraints, nonzeros, is MILP).

    ``maximize`` is the sense the file's OBJSENSE states (None: HiGHS's reading); it wins because
    HiGHS's free reader ignores "OBJSENSE MAXIMIZE" on one line and the fixed reader gets a copy
    without OBJSENSE.
    """
    import numpy as np  # a dependency of highspy

    n = highs.getNumCol()
    kinds = np.fromiter((int(highs.getColIntegrality(j)[1]) for j in range(n)), dtype=np.int8, count=n)
    if np.isin(kinds, list(_SEMI)).any():
        refuse_semicontinuous(source)
    is_milp = bool((kinds == _INTEGER).any())
    if maximize is None:
        maximize = highs.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
    offset = highs.getObjectiveOffset()[1]
    spans = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]

    def columns(part: int) -> Iterator[Any]:  # 2 costs, 3 lower bounds, 4 upper bounds
        for start, stop in spans:
            index = np.arange(start, stop, dtype=np.int32)
            yield highs.getCols(len(index), index)[part]

    out.write('{"objective_data":{"coefficients":')
    _array(out, (_numbers(c, source, "objective coefficients") for c in columns(2)))
    offset_text = next(_numbers(np.array([offset]), source, "objective offset"))
    out.write(f',"scalability_factor":1.0,"offset":{offset_text}}},"variable_bounds":{{"upper_bounds":')
    _array(out, (_bounds(c) for c in columns(4)))
    out.write(',"lower_bounds":')
    _array(out, (_bounds(c) for c in columns(3)))
    out.write(f'}},"maximize":{json.dumps(bool(maximize))}')
    if is_milp:
        out.write(',"variable_types":')
        _array(out, (np.where(kinds[a:b] == _INTEGER, '"I"', '"C"').tolist() for a, b in spans))
    out.write(',"variable_names":')  # LPData has no field for constraint names: those stay behind
    _array(out, ([json.dumps(highs.getColName(j)[1]) for j in range(a, b)] for a, b in spans))

    highs.ensureRowwise()  # HiGHS reads CSC; rows come cheaply only from a row-wise matrix
    m = highs.getNumRow()

    def rows() -> Iterator[tuple[Any, Any, Any]]:
        """(row indices, lower, upper) per chunk, without free rows: (-inf, +inf) constrains nothing."""
        for start in range(0, m, CHUNK):
            index = np.arange(start, min(start + CHUNK, m), dtype=np.int32)
            lower, upper = highs.getRows(len(index), index)[2:4]
            keep = ~(np.isneginf(lower) & np.isposinf(upper))
            if keep.any():
                yield index[keep], lower[keep], upper[keep]

    def entries() -> Iterator[tuple[Any, Any, Any]]:
        """(starts within the chunk, column indices, values) per chunk of rows."""
        for index, _, _ in rows():
            yield highs.getRowsEntries(len(index), index)[1:]

    totals = {"rows": 0, "nonzeros": 0}

    def offsets() -> Iterator[Iterable[str]]:
        yield ["0"]
        for starts, columns_, _ in entries():
            ends = np.append(starts[1:], len(columns_)) + totals["nonzeros"]
            totals["rows"] += len(starts)
            totals["nonzeros"] += len(columns_)
            yield map(str, ends.tolist())

    out.write(',"csr_constraint_matrix":{"offsets":')
    _array(out, offsets())
    out.write(',"indices":')
    _array(out, (map(str, c.tolist()) for _, c, _ in entries()))
    out.write(',"values":')
    _array(out, (_numbers(v, source, "matrix coefficients") for _, _, v in entries()))
    out.write('},"constraint_bounds":{"upper_bounds":')
    _array(out, (_bounds(up) for _, _, up in rows()))
    out.write(',"lower_bounds":')
    _array(out, (_bounds(lo) for _, lo, _ in rows()))
    out.write("}" + config + "}")
    return n, totals["rows"], totals["nonzeros"], is_milp


def _array(out: IO[str], chunks: Iterable[Iterable[str]]) -> None:
    """A JSON list from chunks of already-encoded items, written as it goes."""
    out.write("[")
    first = True
    for chunk in chunks:
        text = ",".join(chunk)
        if text:
            out.write(text if first else "," + text)
            first = False
    out.write("]")


def _numbers(values: Any, source: str, what: str) -> Iterator[str]:
    """Finite floats as JSON numbers (``repr`` round-trips exactly); anything else is refused."""
    import numpy as np

    if not np.isfinite(values).all():
        raise InvalidInputError(f"MPS file {source} has non-finite {what}; LPData needs finite numbers.")
    return map(repr, values.tolist())


def _bounds(values: Any) -> Iterator[str]:
    """Bounds as JSON: cuOpt's ``"inf"``/``"ninf"`` for infinite ones (JSON has no infinity)."""
    inf = float("inf")
    return ('"inf"' if v == inf else '"ninf"' if v == -inf else repr(v) for v in values.tolist())
