from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from airflow_provider.exceptions import UnsafeArchiveError
from airflow_provider.utils.archives import (
    copy_bounded_stream,
    extract_tar_stream,
    open_zip_member,
    safe_member_name,
)


def _tar(members: dict[str, bytes], *, extra=None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra:
            tar.addfile(extra)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../evil", "C:/x", "..\\evil"])
def test_escaping_names_are_refused(name):
    with pytest.raises(UnsafeArchiveError):
        safe_member_name(name)


@pytest.mark.parametrize(
    ("name", "clean"), [("a/b.csv", "a/b.csv"), ("./x.json", "x.json"), ("a/./b", "a/b")]
)
def test_safe_names(name, clean):
    assert safe_member_name(name) == clean


def test_tar_extracts_into_folder(tmp_path):
    out = extract_tar_stream(
        _tar({"solution.json": b"{}", "reports/plan.csv": b"a,b\n"}), str(tmp_path / "o") + "/"
    )
    assert sorted(out) == sorted([str(tmp_path / "o/solution.json"), str(tmp_path / "o/reports/plan.csv")])
    assert (tmp_path / "o/reports/plan.csv").read_bytes() == b"a,b\n"


def test_tar_traversal_refused_and_nothing_escapes(tmp_path):
    with pytest.raises(UnsafeArchiveError):
        extract_tar_stream(_tar({"../escape.txt": b"x"}), str(tmp_path / "o"))
    assert not (tmp_path / "escape.txt").exists()


def test_tar_symlink_refused(tmp_path):
    link = tarfile.TarInfo("link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_tar_stream(_tar({}, extra=link), str(tmp_path / "o"))


def test_tar_bomb_bounded_while_decompressing(tmp_path):
    bomb = _tar({"big.bin": b"\0" * (3 * 1024 * 1024)})
    with pytest.raises(UnsafeArchiveError, match="more than"):
        extract_tar_stream(bomb, str(tmp_path / "o"), max_total_bytes=1024 * 1024)
    assert not (tmp_path / "o" / "big.bin").exists()  # atomic: no partial file left


def test_not_a_tar(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="not a valid tar"):
        extract_tar_stream(io.BytesIO(b"not a tarball at all" * 100), str(tmp_path))


def _zip(members: dict[str, bytes]) -> zipfile.ZipFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    buf.seek(0)
    return zipfile.ZipFile(buf)


def test_zip_member_selection():
    name, stream = open_zip_member(_zip({"large_result": b"{}", "r.response": b"{}"}), ("large_result",))
    assert name == "large_result" and stream.read() == b"{}"
    name, _ = open_zip_member(_zip({"only.json": b"[]"}), ("large_result",))
    assert name == "only.json"
    with pytest.raises(UnsafeArchiveError, match="no member"):
        open_zip_member(_zip({"a": b"", "b": b""}), ("large_result",))


def test_zip_traversal_refused():
    with pytest.raises(UnsafeArchiveError):
        open_zip_member(_zip({"../../large_result": b"{}"}), ("large_result",))


def test_zip_bomb_refused_by_header_and_by_stream(tmp_path):
    zf = _zip({"large_result": b"\0" * (2 * 1024 * 1024)})
    with pytest.raises(UnsafeArchiveError, match="declares"):
        open_zip_member(zf, ("large_result",), max_total_bytes=1024 * 1024)
    _, stream = open_zip_member(zf, ("large_result",))
    with pytest.raises(UnsafeArchiveError):
        copy_bounded_stream(stream, str(tmp_path / "r.json"), max_total_bytes=1024 * 1024)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"ok.json": b"{}", "../evil": b"x"},  # a traversal after a good member
        {f"m{i}.csv": b"1" for i in range(12)},  # one member too many (bound 11 below)
    ],
)
def test_a_refused_archive_leaves_nothing_behind(tmp_path, bad):
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError):
        extract_tar_stream(_tar(bad), f"{out}/", max_members=11)
    assert not out.exists() or list(out.rglob("*")) == []
