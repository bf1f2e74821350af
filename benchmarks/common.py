"""What every benchmark shares: the services (emulator, local S3), /proc probes, subprocess runs."""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import requests

from optimization_emulator.testing.emulator import EmulatorProcess
from optimization_emulator.testing.memory import MIB, proc_status, run_probe
from optimization_emulator.testing.s3 import LocalS3

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".bench"
MB = 1_000_000
API_KEY = "bench-api-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc ------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@contextlib.contextmanager
def cpu_meter(pids: dict[str, int]) -> Iterator[dict[str, float]]:
    """``with cpu_meter({"emulator": pid}) as cpu:`` → afterwards ``cpu["emulator"]`` is the CPU% of
    one core that process used during the block (and ``cpu["wall"]`` the block's seconds)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    result: dict[str, float] = {}
    yield result
    wall = max(time.perf_counter() - started, 1e-9)
    result["wall"] = wall
    for name, pid in pids.items():
        result[name] = 100 * (cpu_seconds(pid) - before[name]) / wall


def process_cpu() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def established_peers(port: int) -> set[int]:
    """Client ports of the ESTABLISHED TCP connections to local ``port`` (server side)."""
    peers = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                local, remote, state = parts[1], parts[2], parts[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    peers.add(int(remote.rsplit(":", 1)[1], 16))
    return peers


class ConnectionWatch:
    """Samples the connections a server port holds: most at once, and distinct ones seen."""

    def __init__(self, port: int, interval: float = 0.25) -> None:
        self.port, self.interval = port, interval
        self.most = 0
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            peers = established_peers(self.port)
            self.most = max(self.most, len(peers))
            self.seen |= peers
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def load_average() -> float:
    return os.getloadavg()[0]


def machine() -> str:
    """One line about this machine: CPU model and count, memory, kernel, Python."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{os.cpu_count()} × {model}, {mem:.0f} GiB RAM, Linux {os.uname().release}, "
        f"Python {sys.version.split()[0]}"
    )


# -- payloads ---------------------------------------------------------------------------------------
def write_json_padding(path: Path, size: int) -> Path:
    """A valid JSON document of exactly ``size`` bytes, ``{"padding":"xxx..."}``, written in 1 MiB chunks."""
    head, tail = b'{"padding":"', b'"}'
    left = size - len(head) - len(tail)
    block = b"x" * MIB
    with open(path, "wb") as f:
        f.write(head)
        while left > 0:
            f.write(block[: min(left, MIB)])
            left -= min(left, MIB)
        f.write(tail)
    return path


# -- services ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def bare_sink(work: Path) -> Iterator[tuple[str, int]]:
    """``benchmarks.sink`` in a subprocess: yields (PUT URL, pid)."""
    port_file = work / "sink.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.sink", str(port_file)], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare sink did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}/sink", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Services:
    """The emulator (timer, echo apps; 2,000 parallel runs) and a local S3, for one benchmark run."""

    work: Path
    data_dir: Path  # the emulator's (tmpfs where there is one: its storage stands in for S3's)
    emulator: EmulatorProcess
    s3: LocalS3
    bucket: str = "bench"
    env: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.emulator.api_key}"}
        response = requests.request(method, self.emulator.url + path, headers=headers, timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def upload_url(self, app: str) -> str:
        return self.api("POST", f"/v1/applications/{app}/runs/uploadurl")["upload_url"]

    def presigned_s3(self, method: str, key: str) -> str:
        action = {"GET": "get_object", "PUT": "put_object"}[method]
        return self.s3.client().generate_presigned_url(
            action, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=3600
        )

    def free_disk(self) -> None:
        """Drop stored uploads (runs keep hard links to theirs until deleted)."""
        for path in (self.data_dir / "nextmv" / "uploads").glob("*"):
            path.unlink(missing_ok=True)

    def pids(self) -> dict[str, int]:
        assert self.emulator.pid is not None
        assert self.s3.pid is not None
        return {"emulator": self.emulator.pid, "s3": self.s3.pid}


def _emulator_data_dir(work: Path) -> Path:
    """On tmpfs (/dev/shm) when it has room, so that disk writeback does not time the transfers."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 4 * 1024**3:
        return Path(tempfile.mkdtemp(prefix="bench-emulator-", dir=shm))
    return work / "emulator-data"


@contextlib.contextmanager
def services(work: Path) -> Iterator[Services]:
    work.mkdir(parents=True, exist_ok=True)
    data_dir = _emulator_data_dir(work)
    emulator = EmulatorProcess(
        api_keys=(API_KEY,),
        apps={"echo": "cat"},
        extra_args=("--max-parallel-runs", "2000", "--log-level", "WARNING"),
        data_dir=data_dir,
        log_path=work / "emulator.log",
    )
    s3 = LocalS3(work / "moto.log").start()
    try:
        with emulator:
            env = {
                **os.environ,
                **emulator.airflow_connections(),
                **s3.env,
                "AIRFLOW_HOME": str(work / "airflow-home"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
                "PYTHONPATH": str(REPO),
            }
            svc = Services(work, data_dir, emulator, s3, env=env)
            svc.s3.client().create_bucket(Bucket=svc.bucket)
            yield svc
    finally:
        s3.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# -- subprocesses -----------------------------------------------------------------------------------
@dataclass
class ChildResult:
    wall: float
    peak_rss: int  # bytes: the largest VmHWM sampled from /proc while the process(es) ran
    returncode: int
    stderr: str = ""


def run_processes(*argvs: Sequence[str], env: dict[str, str]) -> ChildResult:
    """Run ``argvs[0] | argvs[1] | ...``; wall time from spawn until all exit, and the peak RSS of the
    largest one, sampled from /proc every 10 ms (``wait4``'s ru_maxrss would count the forking
    Python parent's memory, which a vfork child shares until exec)."""
    started = time.perf_counter()
    procs: list[subprocess.Popen[bytes]] = []
    stdin = None
    for i, argv in enumerate(argvs):
        last = i == len(argvs) - 1
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=stdin,
            stdout=subprocess.DEVNULL if last else subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if stdin is not None:
            stdin.close()
        stdin = proc.stdout
        procs.append(proc)
    peaks = dict.fromkeys((p.pid for p in procs), 0)
    while any(p.poll() is None for p in procs):
        for p in procs:
            if p.returncode is None:
                peaks[p.pid] = max(peaks[p.pid], proc_status("VmHWM", p.pid))
        time.sleep(0.01)
    wall = time.perf_counter() - started
    errors = b"".join(p.stderr.read() for p in procs if p.stderr).decode(errors="replace")[-2000:]
    for p in procs:
        if p.stderr:
            p.stderr.close()
    code = next((p.returncode for p in procs if p.returncode), 0)
    return ChildResult(wall, max(peaks.values()), code, errors)


def probe(case: str, args: dict[str, Any], env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    """Run ``benchmarks.probe``'s CASE in a fresh interpreter; its JSON answer (raises on failure)."""
    script = "from benchmarks.probe import main; main()"
    return run_probe(script, case, json.dumps(args), env=env, cwd=REPO, timeout=timeout)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, min(len(ordered), math.ceil(q / 100 * len(ordered)))) - 1]
