"""A local S3 for tests and benchmarks: moto in server mode, a real HTTP endpoint on 127.0.0.1.

boto3 and smart-open reach it through ``AWS_ENDPOINT_URL`` (see :attr:`LocalS3.env`). Standard
library and ``requests`` only; moto itself runs in the subprocess.

    with LocalS3(log_path) as s3:
        os.environ.update(s3.env)
        s3.client().create_bucket(Bucket="b")
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalS3:
    """``python -m moto.server`` on a free port; ``env`` holds the variables that point boto3 at it."""

    def __init__(self, log_path: str | Path, startup_timeout: float = 30.0) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self._log_path = Path(log_path)
        self._startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        log = open(self._log_path, "wb")  # noqa: SIM115 (the child keeps it; closed below)
        with log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self._startup_timeout
        while True:
            with contextlib.suppress(requests.ConnectionError):
                requests.get(self.endpoint + "/moto-api/", timeout=1)
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto did not start: {self._log_path.read_text()[-2000:]}")
            time.sleep(0.2)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
