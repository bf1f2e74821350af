"""Run execution: cancellation kills the app, the queue honours its limits, archives are guarded."""

from __future__ import annotations

import io
import tarfile
import time

import pytest
import requests

from optimization_emulator.archives import ArchiveError, extract_tar_gz, pack_tar_gz

RUNS = "/v1/applications/{}/runs"
MULTI_FILE = {"format": {"input": {"type": "multi-file"}, "output": {"type": "multi-file"}}}


def app_pids(http, app_id: str, run_id: str) -> list[int]:
    http.wait_until(lambda: "pids" in http.logs(app_id, run_id), what="the app to report its pids")
    line = next(line for line in http.logs(app_id, run_id).splitlines() if line.startswith("pids"))
    return [int(pid) for pid in line.split()[1:]]


def tar_gz(members: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def test_cancel_kills_the_app_and_its_children(http, process_alive):
    run_id = http.new_run("sleeper", input={})
    shell, child = app_pids(http, "sleeper", run_id)
    assert process_alive(shell) and process_alive(child)
    response = http.request("PATCH", RUNS.format("sleeper") + f"/{run_id}/cancel")
    assert response.status_code == 200
    meta = http.metadata("sleeper", run_id)["metadata"]
    assert meta["status_v2"] == "canceled" and meta["status"] == "failed"
    http.wait_until(lambda: not process_alive(shell) and not process_alive(child), what="the app to die")


def test_delete_of_a_running_run_kills_it(http, process_alive):
    run_id = http.new_run("sleeper", input={})
    shell, child = app_pids(http, "sleeper", run_id)
    assert http.request("DELETE", RUNS.format("sleeper") + f"/{run_id}").status_code == 200
    http.wait_until(lambda: not process_alive(shell) and not process_alive(child), what="the app to die")
    assert http.request("GET", RUNS.format("sleeper") + f"/{run_id}/metadata").status_code == 404


def test_queue_delay_and_parallel_limit(start_emulator, http_client_for):
    emulator = start_emulator(
        apps={"slow": "sleep 30"}, extra_args=("--max-parallel-runs", "1", "--queue-delay", "0.5")
    )
    http = http_client_for(emulator)
    first = http.new_run("slow", input={})
    assert http.metadata("slow", first)["metadata"]["status_v2"] == "queued"
    second = http.new_run("slow", input={})
    third = http.new_run("slow", input={})
    http.wait_for_status("slow", first, "running")
    time.sleep(0.8)  # well past the queue delay: only the slot keeps them queued
    assert [http.metadata("slow", r)["metadata"]["status_v2"] for r in (second, third)] == ["queued"] * 2

    http.request("PATCH", RUNS.format("slow") + f"/{third}/cancel")  # a queued run never starts
    third_meta = http.metadata("slow", third)["metadata"]
    assert third_meta["status_v2"] == "canceled" and third_meta["initiated_at"] is None
    http.request("PATCH", RUNS.format("slow") + f"/{first}/cancel")
    http.wait_for_status("slow", second, "running")
    assert http.metadata("slow", third)["metadata"]["status_v2"] == "canceled"
    http.request("PATCH", RUNS.format("slow") + f"/{second}/cancel")
    assert emulator.stats()["nextmv"]["runs_finished_by_status"] == {"canceled": 3}


def test_multi_file_output_is_a_tar_gz_served_by_url_only(http):
    upload_id = http.upload("files", tar_gz({"input.json": b'{"a": 1}', "data/rows.csv": b"a,b\n1,2\n"}))
    run_id = http.new_run("files", upload_id=upload_id, configuration=MULTI_FILE)
    meta = http.wait("files", run_id)["metadata"]
    assert meta["status_v2"] == "succeeded", meta["error"]
    assert meta["format"]["output"]["type"] == "multi-file"
    inline = http.request("GET", RUNS.format("files") + f"/{run_id}")
    assert inline.status_code == 400 and "format=url" in inline.json()["error"]
    url = http.request("GET", RUNS.format("files") + f"/{run_id}", params={"format": "url"}).json()["output"][
        "url"
    ]
    archive = requests.get(url, timeout=10)
    assert archive.headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        contents = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert contents == {
        "input.json": b'{"a": 1}',
        "data/rows.csv": b"a,b\n1,2\n",
        "listing.txt": b"data\ninput.json\n",
    }
    assert meta["output_size"] == len(archive.content)


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (tar_gz({"../escape.txt": b"x"}), "unsafe archive member"),
        (tar_gz({"/etc/owned": b"x"}), "unsafe archive member"),
        (tar_gz({}, links={"link": "/etc/passwd"}), "unsafe archive member"),
        (b"not a tarball at all", "not a readable tar.gz"),
    ],
)
def test_unsafe_or_broken_input_archives_fail_the_run(http, archive, message):
    run_id = http.new_run("files", upload_id=http.upload("files", archive), configuration=MULTI_FILE)
    meta = http.wait("files", run_id)["metadata"]
    assert meta["status_v2"] == "failed"
    assert message in meta["error"]


def test_failed_multi_file_run_still_has_an_archive(http):
    run_id = http.new_run(
        "fail", upload_id=http.upload("fail", tar_gz({"a": b"1"})), configuration=MULTI_FILE
    )
    meta = http.wait("fail", run_id)["metadata"]
    assert meta["status_v2"] == "failed" and meta["output_size"] > 0
    url = http.request("GET", RUNS.format("fail") + f"/{run_id}/output", params={"format": "url"}).json()[
        "url"
    ]
    with tarfile.open(fileobj=io.BytesIO(requests.get(url, timeout=10).content), mode="r:gz") as tar:
        assert tar.getnames() == []


def test_text_input_reaches_stdin_unchanged(http):
    upload_id = http.upload("echo", "h\u00e9llo, plain text".encode())
    run_id = http.new_run(
        "echo",
        upload_id=upload_id,
        configuration={"format": {"input": {"type": "text"}, "output": {"type": "text"}}},
    )
    assert http.wait("echo", run_id)["metadata"]["status_v2"] == "succeeded"
    url = http.request("GET", RUNS.format("echo") + f"/{run_id}/output", params={"format": "url"}).json()[
        "url"
    ]
    assert requests.get(url, timeout=10).content == "h\u00e9llo, plain text".encode()


def test_extraction_bounds_size_and_member_paths(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(tar_gz({"zeros.bin": bytes(200_000)}))  # compresses to a few hundred bytes
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        extract_tar_gz(archive, tmp_path / "out", max_bytes=100_000)
    assert not (tmp_path / "out" / "zeros.bin").exists()
    archive.write_bytes(tar_gz({"ok.txt": b"fine", "../../evil": b"x"}))
    with pytest.raises(ArchiveError, match="unsafe"):
        extract_tar_gz(archive, tmp_path / "out2", max_bytes=100_000)
    assert not (tmp_path / "out2" / "ok.txt").exists()  # checked before anything is written
    assert not (tmp_path / "evil").exists()


def test_pack_and_extract_round_trip(tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "x.csv").write_text("1,2\n")
    (source / "top.json").write_text("{}")
    pack_tar_gz(source, tmp_path / "out.tar.gz")
    names = extract_tar_gz(tmp_path / "out.tar.gz", tmp_path / "dest", max_bytes=10_000)
    assert sorted(names) == ["sub", "sub/x.csv", "top.json"]
    assert (tmp_path / "dest" / "sub" / "x.csv").read_text() == "1,2\n"
