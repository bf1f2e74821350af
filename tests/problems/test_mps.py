"""MPS files (fixed and free) converted to cuOpt LPData and solved: the JSON must be the file's problem.

Each problem is converted, validated and solved by the emulator's cuOpt LP solver (the strict
LPData schema, in-process), and its objective compared with HiGHS's own solve of the MPS file.
"""

from __future__ import annotations

import bz2
import gzip
import json
import math
import resource
import time

import highspy
import pytest

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.problems.mps import is_mps_uri, mps_to_cuopt, staged_mps_problem
from optimization_emulator.cuopt import lp as emulator_lp

# Free format: OBJSENSE section, a free row, RHS on the objective (an offset), RANGES on L/G/E rows
# (E with a negative and a positive range), MARKER integers, and every bound type.
FREE_MILP = """\
NAME          ALLKINDS
OBJSENSE
    MAX
ROWS
 N  profit
 L  cap
 G  floor
 E  bal
 E  bal2
 N  unused
 L  lim
COLUMNS
    up      profit  3     cap     1
    up      floor   1     unused  9
    lo      profit  -1    cap     1
    lo      bal     1
    fx      profit  2     lim     1
    fr      profit  -1    bal     1
    fr      bal2    1
    mi      profit  -2    bal2    1
    pl      profit  1     lim     1
    big     profit  1     lim     1
    MARKER  'MARKER'  'INTORG'
    mint    profit  2     cap     1
    mint    floor   1
    MARKER  'MARKER'  'INTEND'
    bv      profit  5     lim     1
    li      profit  1     cap     1
    ui      profit  1     floor   1
    ui      lim     1
RHS
    RHS     profit  -7    cap     10
    RHS     floor   2     bal     1
    RHS     bal2    0     lim     30
RANGES
    RNG     cap     5     floor   4
    RNG     bal     -3    bal2    2
BOUNDS
 UP BND     up      4.5
 LO BND     lo      -2.5
 UP BND     lo      3
 FX BND     fx      1.25
 FR BND     fr
 MI BND     mi
 UP BND     mi      6
 PL BND     pl
 UP BND     big     1e30
 BV BND     bv
 LI BND     li      -3
 UP BND     li      4
 UI BND     ui      7
ENDATA
"""


def _fixed(*fields: str | None) -> str:
    """One fixed-format line: fields start in columns 2, 5, 15, 25, 40 and 50."""
    line = [" "] * 61
    for start, value in zip((1, 4, 14, 24, 39, 49), fields):
        if value:
            line[start : start + len(value)] = value
    return "".join(line).rstrip()


# Fixed format, names with spaces (only the fixed reader can read it), minimize, an LP.
FIXED_LP = "\n".join(
    [
        "NAME          FIXED LP",
        "ROWS",
        _fixed("N", "cost"),
        _fixed("G", "need 1"),
        _fixed("L", "room 2"),
        "COLUMNS",
        _fixed(None, "x one", "cost", "2.0", "need 1", "1.0"),
        _fixed(None, "x one", "room 2", "1.0"),
        _fixed(None, "y two", "cost", "3.0", "need 1", "2.0"),
        _fixed(None, "y two", "room 2", "-1.0"),
        "RHS",
        _fixed(None, "RHS", "need 1", "4.0", "room 2", "3.0"),
        "RANGES",
        _fixed(None, "RNG", "need 1", "6.0"),
        "BOUNDS",
        _fixed("UP", "BND", "x one", "2.0"),
        _fixed("LO", "BND", "y two", "-1.0"),
        "ENDATA",
        "",
    ]
)

SMALL_LP = """\
NAME small
ROWS
 N obj
 L c1
COLUMNS
 x obj -1 c1 1
 y obj -2 c1 1
RHS
 rhs c1 4
BOUNDS
 UP bnd y 3
ENDATA
"""

QP = SMALL_LP.replace("ENDATA", "QUADOBJ\n x x 2\n x y 1\nENDATA")


def solve_lpdata(data: dict) -> tuple[str, float | None]:
    """Status and objective of LPData solved by the emulator's cuOpt solver (strict schema)."""
    problem, warnings = emulator_lp.parse(json.loads(json.dumps(data)))  # exactly what goes on the wire
    assert warnings == []
    answer, _ = emulator_lp.solve(problem)
    return answer["status"], answer["solution"]["primal_objective"]


def solve_mps(path) -> float:
    """HiGHS's own optimum of the MPS file."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    assert highs.readModel(str(path)) == highspy.HighsStatus.kOk
    highs.run()
    assert highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return highs.getInfo().objective_function_value


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_free_format_milp_with_every_bound_type_ranges_and_markers(tmp_path):
    path = write(tmp_path, "allkinds.mps", FREE_MILP)
    data = mps_to_cuopt(str(path))

    assert data["maximize"] is True
    assert data["objective_data"]["offset"] == 7.0  # RHS on the objective row is its negated offset
    names = data["variable_names"]
    assert names == ["up", "lo", "fx", "fr", "mi", "pl", "big", "mint", "bv", "li", "ui"]
    bounds = data["variable_bounds"]
    by_name = dict(zip(names, zip(bounds["lower_bounds"], bounds["upper_bounds"])))
    assert by_name == {
        "up": (0.0, 4.5),
        "lo": (-2.5, 3.0),
        "fx": (1.25, 1.25),
        "fr": ("ninf", "inf"),
        "mi": ("ninf", 6.0),
        "pl": (0.0, "inf"),
        "big": (0.0, "inf"),  # 1e30 is infinite
        "mint": (0.0, 1.0),  # a MARKER integer without bounds is binary (HiGHS, classic MPS)
        "bv": (0.0, 1.0),
        "li": (-3.0, 4.0),
        "ui": (0.0, 7.0),
    }
    assert dict(zip(names, data["variable_types"])) == {
        **dict.fromkeys(names, "C"),
        **dict.fromkeys(["mint", "bv", "li", "ui"], "I"),
    }
    # The free rows (profit is the objective, unused is dropped): cap, floor, bal, bal2, lim.
    rows = data["constraint_bounds"]
    assert list(zip(rows["lower_bounds"], rows["upper_bounds"])) == [
        (5.0, 10.0),  # L with range 5
        (2.0, 6.0),  # G with range 4
        (-2.0, 1.0),  # E with range -3
        (0.0, 2.0),  # E with range 2
        ("ninf", 30.0),
    ]
    csr = data["csr_constraint_matrix"]
    assert csr["offsets"] == [0, 4, 7, 9, 11, 16]  # the entry of "up" in "unused" is gone with the row
    assert csr["indices"][:4] == [0, 1, 7, 9]
    assert csr["values"][:4] == [1.0, 1.0, 1.0, 1.0]
    assert len(csr["indices"]) == len(csr["values"]) == 16

    status, objective = solve_lpdata(data)
    assert status == "Optimal"
    assert objective == pytest.approx(solve_mps(path), abs=1e-7)


def test_fixed_format_with_spaces_in_names(tmp_path):
    path = write(tmp_path, "fixed.mps", FIXED_LP)
    data = mps_to_cuopt(str(path))
    assert data["variable_names"] == ["x one", "y two"]
    assert "variable_types" not in data  # an LP
    assert data["maximize"] is False
    assert data["constraint_bounds"] == {"upper_bounds": [10.0, 3.0], "lower_bounds": [4.0, "ninf"]}
    assert solve_lpdata(data) == ("Optimal", pytest.approx(solve_mps(path), abs=1e-7))


def test_forced_fixed_reader_keeps_objsense(tmp_path):
    """mps_format='fixed': HiGHS's fixed reader rejects OBJSENSE, so it reads a copy without it."""
    plain = FIXED_LP.replace("x one", "x_one").replace("y two", "y_two").replace("need 1", "need_1")
    plain = plain.replace("room 2", "room_2")
    free = mps_to_cuopt(str(write(tmp_path, "plain.mps", plain)))
    with_sense = plain.replace("ROWS", "OBJSENSE\n    MAX\nROWS", 1)
    fixed = mps_to_cuopt(str(write(tmp_path, "sense.mps", with_sense)), mps_format="fixed")
    assert fixed["maximize"] is True
    assert {k: v for k, v in fixed.items() if k != "maximize"} == {
        k: v for k, v in free.items() if k != "maximize"
    }
    minimized = {**fixed, "maximize": False}
    assert solve_lpdata(minimized) == solve_lpdata(free)


def test_inline_objsense_maximize_is_not_lost(tmp_path):
    """HiGHS's free reader ignores "OBJSENSE MAXIMIZE" on one line; the conversion does not."""
    text = SMALL_LP.replace("ROWS", "OBJSENSE MAXIMIZE\nROWS", 1).replace("obj -1", "obj 1")
    text = text.replace("obj -2", "obj 2")
    data = mps_to_cuopt(str(write(tmp_path, "max.mps", text)))
    assert data["maximize"] is True
    assert solve_lpdata(data) == ("Optimal", pytest.approx(7.0))  # y = 3, x = 1


def test_staged_problem_is_a_file_with_counts_and_is_removed(tmp_path):
    path = write(tmp_path, "allkinds.mps", FREE_MILP)
    with staged_mps_problem(str(path), solver_config={"time_limit": 5}) as staged:
        assert (staged.num_variables, staged.num_constraints, staged.num_nonzeros) == (11, 5, 16)
        assert staged.is_milp
        assert staged.size == staged.path.stat().st_size
        data = json.loads(staged.path.read_text())
        assert data["solver_config"] == {"time_limit": 5}
        assert solve_lpdata(data)[0] == "Optimal"
    assert not staged.path.exists()
    assert not staged.path.parent.exists()


@pytest.mark.parametrize("section", ["QUADOBJ", "QMATRIX", "QSECTION obj"])
def test_qp_is_refused_with_the_reason(tmp_path, section):
    path = write(tmp_path, "qp.qps", QP.replace("QUADOBJ", section))
    with pytest.raises(InvalidInputError, match="it is a QP") as info:
        mps_to_cuopt(str(path))
    assert "LP and MILP only" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("this is not an MPS file\n", "no ROWS or no COLUMNS"),
        (SMALL_LP.replace(" x obj -1 c1 1", " x obj -1 c9 1"), "HiGHS warned.*c9"),
        (SMALL_LP.replace("c1 4", "c1 four"), "not a number: 'rhs c1 four'"),
        (SMALL_LP.replace("ENDATA", "SOS\n S1 SOS\n    x:1 y:2\nENDATA"), "special ordered sets"),
        (SMALL_LP.replace(" UP bnd y 3", " SC bnd y 3"), "semi-continuous"),
        (
            SMALL_LP.replace(" UP bnd y 3", " UP bnd y -3"),
            "'y' has lower bound 0.0 above its upper bound -3.0",
        ),
        ("NAME x\nROWS\n N obj\nCOLUMNS\nRHS\nENDATA\n", "no variables"),
    ],
    ids=["garbage", "unknown-row", "bad-number", "sos", "semicontinuous", "negative-up", "empty"],
)
def test_malformed_or_unsupported_files_are_refused_clearly(tmp_path, text, match):
    with pytest.raises(InvalidInputError, match=match):
        mps_to_cuopt(str(write(tmp_path, "bad.mps", text)))


def test_integer_bounds_with_the_fixed_reader_are_refused(tmp_path):
    text = FIXED_LP.replace(_fixed("LO", "BND", "y two", "-1.0"), _fixed("BV", "BND", "y two"))
    with pytest.raises(InvalidInputError, match="ignores BV/LI/UI"):
        mps_to_cuopt(str(write(tmp_path, "bv.mps", text)))


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        mps_to_cuopt(str(tmp_path / "nope.mps"))
    path = str(write(tmp_path, "small.mps", SMALL_LP))
    with pytest.raises(InvalidInputError, match="mps_format"):
        mps_to_cuopt(path, mps_format="free")
    with pytest.raises(InvalidInputError, match="solver_config is not JSON"):
        mps_to_cuopt(path, solver_config={"time_limit": math.nan})


def test_without_highspy_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "highspy", None)
    with pytest.raises(InvalidInputError, match=r"airflow-provider-optimization\[mps\]"):
        mps_to_cuopt(str(write(tmp_path, "small.mps", SMALL_LP)))


@pytest.mark.parametrize(("suffix", "pack"), [(".gz", gzip.compress), (".bz2", bz2.compress)])
def test_compressed_files_and_the_size_cap(tmp_path, suffix, pack):
    path = tmp_path / f"allkinds.MPS{suffix}"
    path.write_bytes(pack(FREE_MILP.encode()))
    assert is_mps_uri(str(path))
    assert mps_to_cuopt(f"file://{path}") == mps_to_cuopt(str(write(tmp_path, "plain.mps", FREE_MILP)))
    with pytest.raises(InvalidInputError, match="larger than max_bytes=1,000"):
        mps_to_cuopt(str(path), max_bytes=1000)  # the archive is smaller: the expanded size counts
    corrupt = tmp_path / f"corrupt.mps{suffix}"
    corrupt.write_bytes(pack(FREE_MILP.encode())[:40])
    with pytest.raises(InvalidInputError, match="Cannot decompress"):
        mps_to_cuopt(str(corrupt))


def test_plain_file_over_the_cap(tmp_path):
    with pytest.raises(InvalidInputError, match="larger than max_bytes"):
        mps_to_cuopt(str(write(tmp_path, "small.mps", SMALL_LP)), max_bytes=10)


def test_is_mps_uri():
    assert is_mps_uri("s3://b/k/model.mps")
    assert is_mps_uri("https://h/p/Model.QPS.bz2?X-Amz-Signature=abc")
    assert not is_mps_uri("s3://b/k/model.json")
    assert not is_mps_uri("https://h/p?file=model.mps")


def test_s3_and_presigned_http_uris(s3, tmp_path):
    """A real S3 server (moto): s3:// and a presigned http(s) URL give the local file's problem."""
    expected = mps_to_cuopt(str(write(tmp_path, "allkinds.mps", FREE_MILP)))
    s3.put_object(Bucket=s3.bucket, Key="in/allkinds.mps", Body=FREE_MILP.encode())
    s3.put_object(Bucket=s3.bucket, Key="in/allkinds.mps.gz", Body=gzip.compress(FREE_MILP.encode()))
    assert mps_to_cuopt(f"s3://{s3.bucket}/in/allkinds.mps") == expected
    assert mps_to_cuopt(f"s3://{s3.bucket}/in/allkinds.mps.gz", open_kwargs={"transport_params": {}}) == (
        expected
    )
    url = s3.generate_presigned_url("get_object", Params={"Bucket": s3.bucket, "Key": "in/allkinds.mps.gz"})
    assert is_mps_uri(url)
    assert mps_to_cuopt(url) == expected
    with pytest.raises(InvalidInputError, match="Cannot open MPS file"):
        mps_to_cuopt(f"s3://{s3.bucket}/in/missing.mps")


def generated_mps(path, rows: int, cols: int, per_row: int) -> None:
    """A feasible, bounded LP in free MPS with ``rows * per_row`` nonzeros."""
    entries: dict[int, list[tuple[int, float]]] = {j: [] for j in range(cols)}
    for i in range(rows):
        for k in range(per_row):
            entries[(i * 7 + k * 131) % cols].append((i, 1.0 + (i + k) % 5))
    lines = ["NAME gen", "ROWS", " N obj", *(f" L r{i}" for i in range(rows)), "COLUMNS"]
    for j in range(cols):
        cells = [("obj", -1.0 - j % 3)] + [(f"r{i}", v) for i, v in entries[j]]
        lines.extend(f" x{j} {name} {value}" for name, value in cells)
    lines += ["RHS", *(f" rhs r{i} {10 + i % 7}" for i in range(rows)), "BOUNDS"]
    lines += [f" UP bnd x{j} 5" for j in range(cols)] + ["ENDATA", ""]
    path.write_text("\n".join(lines))


def test_generated_problem_of_50k_nonzeros(tmp_path):
    path = tmp_path / "gen.mps"
    generated_mps(path, rows=5000, cols=2000, per_row=10)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with staged_mps_problem(str(path)) as staged:
        elapsed = time.perf_counter() - started
        assert (staged.num_variables, staged.num_constraints, staged.num_nonzeros) == (2000, 5000, 50000)
        data = json.loads(staged.path.read_text())
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    print(f"50k nonzeros: {elapsed:.2f} s, JSON {staged.size:,} bytes, peak RSS +{grown_mib:.0f} MiB")
    assert elapsed < 20
    status, objective = solve_lpdata(data)
    assert status == "Optimal"
    assert objective == pytest.approx(solve_mps(path), rel=1e-9)
