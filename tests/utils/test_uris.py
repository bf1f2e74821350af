"""Sources and sinks through smart-open: sizes without reading, outputs that appear only when complete."""

from __future__ import annotations

import pytest

from airflow_provider.exceptions import InvalidInputError, UnsafeIdentifierError
from airflow_provider.utils import uris


def test_local_and_file_uris(tmp_path):
    f = tmp_path / "in.json"
    f.write_bytes(b"{}" * 10)
    for uri in (str(f), f"file://{f}"):
        with uris.open_input(uri) as source:
            assert source.size == 20 and b"".join(source.chunks(7)) == b"{}" * 10
            source.rewind()
            assert source.fileobj.read(2) == b"{}"
    with pytest.raises(InvalidInputError, match="does not exist"):
        with uris.open_input(str(tmp_path / "nope.json")):
            pass
    with pytest.raises(InvalidInputError, match="directory"):
        with uris.open_input(str(tmp_path)):
            pass


def test_s3_source_size_by_seeking(s3):
    s3.put_object(Bucket=s3.bucket, Key="in/p.json", Body=b"[1,2,3]")
    with uris.open_input(f"s3://{s3.bucket}/in/p.json") as source:
        assert source.size == 7 and source.fileobj.read() == b"[1,2,3]"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_output_appears_only_when_complete(tmp_path, s3, where):
    base = str(tmp_path) if where == "local" else f"s3://{s3.bucket}"
    target = uris.join(base, "out", "result.json")
    with pytest.raises(RuntimeError):
        with uris.atomic_output(target) as out:
            out.write(b'{"half": ')
            raise RuntimeError("connection lost mid-download")
    assert not _exists(target, s3), "a failed transfer left an object behind"
    with uris.atomic_output(target) as out:
        out.write(b'{"whole": true}')
    assert _read(target, s3) == b'{"whole": true}'
    if where == "local":
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["result.json"]  # no .partial leftovers


def _exists(target, s3):
    if uris.is_local(target):
        return uris.local_path(target).exists()
    key = target.split("/", 3)[3]
    return s3.list_objects_v2(Bucket=s3.bucket, Prefix=key).get("KeyCount", 0) > 0


def _read(target, s3):
    if uris.is_local(target):
        return uris.local_path(target).read_bytes()
    return s3.get_object(Bucket=s3.bucket, Key=target.split("/", 3)[3])["Body"].read()


def test_helpers():
    assert uris.join("s3://b/x/", "y", "a/z.json") == "s3://b/x/y/a/z.json"
    assert uris.is_folder_uri("s3://b/out/") and not uris.is_folder_uri("s3://b/out.json")
    assert uris.describe("https://h/p?X-Amz-Signature=abc") == "https://h/p?<redacted>"
    assert uris.scheme("C:/data/x.json") == "" and uris.scheme("gs://b/k") == "gs"


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/../../x", "/etc/passwd", "a//b", "a\\b", "x\x00y", "line\nbreak", ".", ""]
)
def test_join_refuses_components_that_could_leave_the_folder(name):
    with pytest.raises(UnsafeIdentifierError):
        uris.join("/srv/out/", name)


@pytest.mark.parametrize("result_id", ["../outside/pwned", "..", "a/b", "a\\b", "nul\x00", "x" * 201, ""])
def test_output_target_refuses_hostile_ids(tmp_path, result_id):
    with pytest.raises(UnsafeIdentifierError):
        uris.output_target(f"{tmp_path}/", result_id)
    with pytest.raises(UnsafeIdentifierError):
        uris.output_target("s3://bucket/solutions/", result_id)


def test_output_target_names_files_inside_folders_only(tmp_path):
    assert uris.output_target(f"{tmp_path}/", "run-1") == f"{tmp_path}/run-1.json"
    assert uris.output_target(str(tmp_path), "run-1") == f"{tmp_path}/run-1.json"  # existing dir
    assert uris.output_target("s3://b/x.json", "../anything") == "s3://b/x.json"  # a file: id unused
