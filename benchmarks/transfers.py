"""Nextmv upload (500 MB) and download (100 MB), through the provider, next to curl and the SDK.

Every client moves the same bytes to or from the same emulator, measured in turns (round-robin over
the repetitions, so a burst of noise hits every client alike). ``curl`` moving the file from disk,
or piped from/to the local S3 server (``curl | curl``), is the floor: the machine's limit for a
streaming transfer through this emulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import (
    MB,
    MIB,
    Services,
    bare_sink,
    cpu_meter,
    median,
    probe,
    run_processes,
    write_json_padding,
)
from benchmarks.report import Report, Row, mib, seconds

CURL = "curl"
MEMORY_GOAL = 64 * MIB
WALL_GOAL = 1.15
SINK = "timer"  # the emulator's synthetic app: it does not read a big input, no process per run


@dataclass
class Samples:
    walls: list[float] = field(default_factory=list)
    memory: list[int] = field(default_factory=list)  # growth (provider, SDK) or peak RSS (curl)
    emulator: list[float] = field(default_factory=list)
    s3: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, wall: float, memory: int, cpu: dict[str, float]) -> None:
        self.walls.append(wall)
        self.memory.append(memory)
        self.emulator.append(cpu.get("emulator", 0.0))
        self.s3.append(cpu.get("s3", 0.0))

    @property
    def wall(self) -> float:
        return median(self.walls)

    def server(self, with_s3: bool) -> str:
        text = f"emulator {median(self.emulator):.0f} %"
        return text + (f", S3 {median(self.s3):.0f} %" if with_s3 else "")

    def walls_text(self) -> str:
        n = len(self.walls)
        return seconds(self.wall) + (f" (median of {n}, min {seconds(min(self.walls))})" if n > 1 else "")


def _curl(*args: str) -> list[str]:
    return [CURL, "-sS", "-f", "--max-time", "600", *args]


def _streamed_put(url: str, size: int) -> list[str]:
    """curl PUT from stdin with an exact Content-Length (no chunked encoding: a presigned PUT needs it)."""
    return _curl("-T", "-", "-H", f"Content-Length: {size}", "-H", "Transfer-Encoding:", url)


def _checked(result: Any, what: str) -> Any:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr}")
    return result


def _rate(size: int, wall: float) -> str:
    return f"{size / wall / MB:.0f} MB/s"


def _verdict(
    report: Report, bench: str, label: str, s: Samples, size: int, floor: Samples, floor_name: str, s3: bool
) -> None:
    ratio = s.wall / floor.wall
    growth = max(s.memory)
    report.add(
        Row(
            bench,
            label,
            s.walls_text(),
            f"+{mib(growth)}",
            f"{_rate(size, s.wall)}; {ratio:.2f}× {floor_name}",
            s.server(s3),
            f"≤ +64 MiB, ≤ {WALL_GOAL}× {floor_name}",
            growth <= MEMORY_GOAL and ratio <= WALL_GOAL,
        )
    )


def _baseline(report: Report, bench: str, label: str, s: Samples, size: int, s3: bool) -> None:
    report.add(
        Row(
            bench,
            label,
            s.walls_text(),
            f"{mib(max(s.memory))} (whole process)",
            _rate(size, s.wall),
            s.server(s3),
        )
    )


# -- upload -----------------------------------------------------------------------------------------
def upload(svc: Services, report: Report, *, size: int, repeat: int, sdk_repeat: int) -> None:
    work = svc.work
    src = write_json_padding(work / "upload.json", size)
    warm = write_json_padding(work / "warm-6mb.json", 6 * MB)  # over 5 MiB: the presigned path
    s3 = svc.s3.client()
    for path in (src, warm):
        s3.upload_file(str(path), svc.bucket, path.name)
    s3_uri, s3_warm = f"s3://{svc.bucket}/{src.name}", f"s3://{svc.bucket}/{warm.name}"
    cases: dict[str, Samples] = {
        k: Samples() for k in ("local", "s3", "curl", "curl_s3", "sdk", "sink_curl", "sink_provider")
    }
    env = {**svc.env, "BENCH_API_KEY": svc.emulator.api_key, "BENCH_URL": svc.emulator.url}
    runs: list[str] = []

    def provider(key: str, uri: str, warm_uri: str) -> None:
        result = probe("upload", {"app": SINK, "uri": uri, "warmup_uri": warm_uri, "pids": svc.pids()}, env)
        cases[key].add(result["wall"], result["growth"], result["servers"])
        runs.append(result["run_id"])

    for rep in range(repeat):
        provider("local", str(src), str(warm))
        provider("s3", s3_uri, s3_warm)
        with cpu_meter(svc.pids()) as cpu:
            r = _checked(run_processes(_curl("-T", str(src), svc.upload_url(SINK)), env=env), "curl -T")
        cases["curl"].add(r.wall, r.peak_rss, cpu)
        get = svc.presigned_s3("GET", src.name)
        with cpu_meter(svc.pids()) as cpu:
            r = _checked(
                run_processes(_curl(get), _streamed_put(svc.upload_url(SINK), size), env=env), "curl | curl"
            )
        cases["curl_s3"].add(r.wall, r.peak_rss, cpu)
        with bare_sink(work) as (sink_url, sink_pid):  # the clients' own ceiling, without the emulator
            args = {"url": sink_url, "sink_pid": sink_pid, "path": str(src), "warmup_path": str(warm)}
            result = probe("sink_upload", args, env)
            cases["sink_provider"].add(
                result["wall"], result["growth"], {"emulator": result["servers"]["sink"]}
            )
            with cpu_meter({"emulator": sink_pid}) as cpu:
                r = _checked(run_processes(_curl("-T", str(src), sink_url), env=env), "curl -T sink")
            cases["sink_curl"].add(r.wall, r.peak_rss, cpu)
        if rep < sdk_repeat:
            args = {"app": SINK, "path": str(src), "warmup_path": str(warm), "pids": svc.pids()}
            result = probe("sdk_upload", args, env)
            cases["sdk"].add(result["wall"], result["growth"], result["servers"])
            runs.append(result["run_id"])
        _cleanup(svc, runs)

    bench = f"Upload {size / MB:.0f} MB (Nextmv)"
    _baseline(report, bench, "curl -T file", cases["curl"], size, False)
    _verdict(report, bench, "operator, local file", cases["local"], size, cases["curl"], "curl", False)
    _baseline(report, bench, "curl S3 GET | curl -T -", cases["curl_s3"], size, True)
    _verdict(report, bench, "operator, s3://", cases["s3"], size, cases["curl_s3"], "curl|curl", True)
    for key, label in (
        ("sink_curl", "curl -T file → bare sink"),
        ("sink_provider", "hook.upload → bare sink"),
    ):
        c = cases[key]
        memory = f"{mib(max(c.memory))} (whole process)" if key == "sink_curl" else f"+{mib(max(c.memory))}"
        report.add(
            Row(bench, label, c.walls_text(), memory, _rate(size, c.wall), f"sink {median(c.emulator):.0f} %")
        )
    emulator_cpu = median(cases["local"].emulator + cases["curl"].emulator)
    report.notes.append(
        "Uploads: the *bare sink* rows send the same file to a socket that only counts bytes "
        "(`benchmarks/sink.py`): the clients' own ceiling — the provider "
        f"{_rate(size, cases['sink_provider'].wall)}, curl {_rate(size, cases['sink_curl'].wall)}. "
        f"Receiving from either client the emulator used {emulator_cpu:.0f} % of a core"
        + (
            " (saturated: its aiohttp receive path, not the client, sets the pace of the emulator rows, "
            "for curl and the provider alike)."
            if emulator_cpu >= 85
            else " (not saturated)."
        )
    )
    sdk = cases["sdk"]
    if sdk.walls:
        report.add(
            Row(
                bench,
                "nextmv SDK 1.13 (json.load + new_run)",
                sdk.walls_text(),
                f"+{mib(max(sdk.memory))}",
                f"{_rate(size, sdk.wall)}; {sdk.wall / cases['curl'].wall:.2f}× curl",
                sdk.server(False),
            )
        )
    src.unlink()


def _cleanup(svc: Services, runs: list[str]) -> None:
    for run_id in runs:
        svc.api("DELETE", f"/v1/applications/{SINK}/runs/{run_id}")
    runs.clear()
    svc.free_disk()


# -- download ---------------------------------------------------------------------------------------
def _echo_run(svc: Services, path: Path) -> str:
    """A finished run of the ``echo`` app (``cat``) whose output is the file at ``path``."""
    grant = svc.api("POST", "/v1/applications/echo/runs/uploadurl")
    with open(path, "rb") as f:
        requests.put(grant["upload_url"], data=f, timeout=600).raise_for_status()
    run_id = svc.api("POST", "/v1/applications/echo/runs", json={"upload_id": grant["upload_id"]})["run_id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        meta = svc.api("GET", f"/v1/applications/echo/runs/{run_id}/metadata")["metadata"]
        if meta["status_v2"] == "succeeded":
            return run_id
        if meta["status_v2"] in ("failed", "canceled"):
            raise RuntimeError(f"echo run {run_id} ended {meta['status_v2']}: {meta['error']}")
        time.sleep(0.2)
    raise RuntimeError(f"echo run {run_id} did not finish")


def download(svc: Services, report: Report, *, size: int, repeat: int) -> None:
    work = svc.work
    src = write_json_padding(work / "download-src.json", size)
    warm = write_json_padding(work / "warm-6mb.json", 6 * MB)
    run_id, warm_run = _echo_run(svc, src), _echo_run(svc, warm)
    src.unlink()
    svc.free_disk()
    out = work / "out"
    out.mkdir(exist_ok=True)
    cases: dict[str, Samples] = {k: Samples() for k in ("local", "s3", "curl", "curl_s3")}
    put_alone: dict[str, list[float]] = {"boto3": [], "curl": []}
    s3_client = svc.s3.client()
    path = f"/v1/applications/echo/runs/{run_id}/output"

    def provider(key: str, target: str, warm_target: str) -> None:
        args = {
            "app": "echo",
            "run_id": run_id,
            "target": target,
            "warmup_run": warm_run,
            "warmup_target": warm_target,
            "pids": svc.pids(),
        }
        result = probe("download", args, svc.env)
        cases[key].add(result["wall"], result["growth"], result["servers"])

    for _ in range(repeat):
        provider("local", str(out / "provider.json"), str(out / "warm.json"))
        provider("s3", f"s3://{svc.bucket}/out/provider.json", f"s3://{svc.bucket}/out/warm.json")
        url = svc.api("GET", path, params={"format": "url"})["url"]
        with cpu_meter(svc.pids()) as cpu:
            r = _checked(run_processes(_curl("-o", str(out / "curl.json"), url), env=svc.env), "curl -o")
        cases["curl"].add(r.wall, r.peak_rss, cpu)
        url = svc.api("GET", path, params={"format": "url"})["url"]
        put = svc.presigned_s3("PUT", "out/curl.json")
        with cpu_meter(svc.pids()) as cpu:
            r = _checked(
                run_processes(_curl(url), _streamed_put(put, size), env=svc.env), "curl | curl to S3"
            )
        cases["curl_s3"].add(r.wall, r.peak_rss, cpu)
        # Where the S3 rows' time goes: the PUT alone, of the file already on disk.
        start = time.perf_counter()
        with open(out / "provider.json", "rb") as body:
            s3_client.put_object(Bucket=svc.bucket, Key="out/put-alone.json", Body=body)
        put_alone["boto3"].append(time.perf_counter() - start)
        put = svc.presigned_s3("PUT", "out/put-alone.json")
        put_alone["curl"].append(
            _checked(run_processes(_curl("-T", str(out / "provider.json"), put), env=svc.env), "curl -T").wall
        )
        for name in ("provider.json", "curl.json"):
            (out / name).unlink(missing_ok=True)
    bench = f"Download {size / MB:.0f} MB (Nextmv)"
    _baseline(report, bench, "curl -o file", cases["curl"], size, False)
    _verdict(
        report, bench, "hook.download_output → local", cases["local"], size, cases["curl"], "curl", False
    )
    _baseline(report, bench, "curl | curl -T - S3 PUT", cases["curl_s3"], size, True)
    _verdict(
        report, bench, "hook.download_output → s3://", cases["s3"], size, cases["curl_s3"], "curl|curl", True
    )
    report.notes.append(
        f"Download to `s3://`: {cases['s3'].wall / cases['curl'].wall:.2f}× `curl -o` alone; the local S3 "
        f"server (moto, Python) used {median(cases['s3'].s3):.0f} % of a core. The provider downloads "
        "into a disk buffer, then sends one PUT through smart-open and boto3 (`uris.atomic_output`); the "
        "curl pipeline streams one presigned PUT while it downloads. The PUT alone, of the same file "
        f"already on disk: boto3 `put_object` {seconds(median(put_alone['boto3']))}, `curl -T` to a "
        f"presigned URL {seconds(median(put_alone['curl']))} (medians of {len(put_alone['curl'])}) — "
        "before sending, botocore reads the file for a CRC32 checksum and, over plain HTTP as here, "
        "for a SHA-256 payload hash; a presigned PUT carries neither (over HTTPS, as to real S3, "
        "botocore leaves the payload unsigned). Run to run, moto's pace varies by ±30 %."
    )
