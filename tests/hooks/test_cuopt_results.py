"""Storing cuOpt results: inline JSON, large-result zips, and hostile zips that must be refused."""

from __future__ import annotations

import json
import zipfile

import pytest

from airflow_provider.exceptions import InvalidInputError, ProtocolError, UnsafeArchiveError
from airflow_provider.hooks.cuopt_results import already_stored, store_inline_result, store_zip_result

OK = {
    "response": {"solver_response": {"status": 0, "num_vehicles": 1, "vehicle_data": {"0": {"task_id": []}}}}
}


def make_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_inline_result_written_and_classified(tmp_path):
    stored = store_inline_result(OK, str(tmp_path) + "/", "req-1")
    assert stored.ok and stored.paths == [str(tmp_path / "req-1.json")]
    assert json.loads((tmp_path / "req-1.json").read_text()) == OK
    assert already_stored(str(tmp_path) + "/", "req-1") == stored
    assert already_stored(str(tmp_path) + "/", "req-2") is None


def test_zip_result_streamed_out_and_checked(tmp_path):
    z = make_zip(tmp_path / "r.zip", {"large_result": json.dumps(OK).encode(), "req-9.response": b"{}"})
    stored = store_zip_result(z, str(tmp_path / "out.json"), "req-9")
    assert stored.ok and json.loads((tmp_path / "out.json").read_text()) == OK


def test_zip_result_on_s3(tmp_path, s3):
    z = make_zip(tmp_path / "r.zip", {"large_result": json.dumps(OK).encode()})
    stored = store_zip_result(z, f"s3://{s3.bucket}/results/", "req-s3")
    assert stored.paths == [f"s3://{s3.bucket}/results/req-s3.json"]
    assert json.loads(s3.get_object(Bucket=s3.bucket, Key="results/req-s3.json")["Body"].read()) == OK


def test_path_traversal_member_refused(tmp_path):
    z = make_zip(tmp_path / "r.zip", {"../../large_result": b"{}"})
    with pytest.raises(UnsafeArchiveError):
        store_zip_result(z, str(tmp_path / "out.json"), "r")
    assert not (tmp_path / "out.json").exists()


def test_zip_bomb_refused_while_streaming(tmp_path):
    bomb = b'{"pad": "' + b"0" * (4 * 1024 * 1024) + b'"}'
    z = make_zip(tmp_path / "r.zip", {"large_result": bomb})
    assert (tmp_path / "r.zip").stat().st_size < 100_000
    with pytest.raises(UnsafeArchiveError):
        store_zip_result(z, str(tmp_path / "out.json"), "r", max_bytes=1024 * 1024)
    assert not (tmp_path / "out.json").exists()


def test_truncated_zip(tmp_path):
    z = make_zip(tmp_path / "r.zip", {"large_result": json.dumps(OK).encode() * 1})
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProtocolError, match="zip"):
        store_zip_result(z, str(tmp_path / "out.json"), "r")


@pytest.mark.parametrize(
    "content",
    [b"\x80\x04\x95pickle", b'{"response": ', b"\x93\x01\x02msgpack"],
    ids=["pickle", "truncated", "msgpack"],
)
def test_non_json_results_are_refused_never_deserialized(tmp_path, content):
    z = make_zip(tmp_path / "r.zip", {"large_result": content})
    with pytest.raises(ProtocolError, match="not valid JSON"):
        store_zip_result(z, str(tmp_path / "out.json"), "r")
    assert not (tmp_path / "out.json").exists()


def test_ambiguous_zip_members(tmp_path):
    z = make_zip(tmp_path / "r.zip", {"a.json": b"{}", "b.json": b"{}"})
    with pytest.raises(UnsafeArchiveError, match="no member"):
        store_zip_result(z, str(tmp_path / "out.json"), "r")


INFEASIBLE = {"response": {"solver_infeasible_response": {"status": 1}}, "notes": ["demand exceeds capacity"]}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_stored_failure_is_read_back_as_a_failure(tmp_path, s3, where):
    """What a retried task finds in storage is judged again: an infeasible result never passes as success."""
    base = f"{tmp_path}/" if where == "local" else f"s3://{s3.bucket}/results/"
    first = store_inline_result(INFEASIBLE, base, "req-inf")
    assert not first.ok
    again = already_stored(base, "req-inf")
    assert again is not None and not again.ok and again.paths == first.paths
    assert "infeasible" in again.message and "demand exceeds capacity" in again.message
    assert already_stored(base, "req-none") is None


@pytest.mark.parametrize("req_id", ["../outside/pwned", "..", "a/b", "nul\x00"])
def test_hostile_request_ids_never_name_a_file(tmp_path, req_id):
    out = tmp_path / "out"
    out.mkdir()
    z = make_zip(tmp_path / "r.zip", {"large_result": json.dumps(OK).encode()})
    with pytest.raises(InvalidInputError):
        store_inline_result(OK, f"{out}/", req_id)
    with pytest.raises(InvalidInputError):
        store_zip_result(z, f"{out}/", req_id)
    assert list(tmp_path.rglob("*.json")) == []
