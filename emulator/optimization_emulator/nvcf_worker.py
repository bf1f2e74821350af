"""What an NVCF worker does with one request, run in a solver process (never on the event loop).

The worker plays both NVCF's worker and the cuOpt container behind it: read the input (the
request body's ``data``, or the first input asset, decoded by sniffing — never unpickled), call
:func:`optimization_emulator.cuopt.solve`, and store the answer on disk: ``<reqId>.json``
when it is smaller than the inline limit, else ``<reqId>.zip`` holding ``large_result`` (the
answer) and ``<reqId>.response`` (``{}``, the container's HTTP body), as NVCF's worker packs
large outputs. Only a small :class:`JobResult` travels back to the server process.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any

#: NVCF ``errorCode`` for "could not download the input asset".
ASSET_DOWNLOAD_FAILURE = 910
#: Keys of the body cuOpt's ``/cuopt/cuopt`` accepts (a strict model).
BODY_KEYS = frozenset({"action", "data", "client_version"})


@dataclasses.dataclass(frozen=True)
class SolveJob:
    req_id: str
    body: Any  # the container's request body (exec: requestBody)
    asset_path: str | None  # the first input asset's data, if the request named one
    result_dir: str
    max_inline_result: int


@dataclasses.dataclass(frozen=True)
class JobResult:
    """How a request ended: HTTP status of the container (or NVCF) and where the answer is."""

    http_status: int
    message: str = ""
    error_code: int | None = None  # NVCF errorCode; None = the HTTP status
    body_path: str | None = None  # inline answer (JSON), for 200
    zip_path: str | None = None  # large answer, for 200
    size: int = 0  # bytes of the JSON answer

    @property
    def ok(self) -> bool:
        return self.http_status == 200

    @property
    def nvcf_error_code(self) -> int:
        return self.error_code if self.error_code is not None else self.http_status


def run_job(job: SolveJob) -> JobResult:
    """Solves one request; every failure becomes a :class:`JobResult`, never an exception."""
    from optimization_emulator.cuopt import CuOptError, solve
    from optimization_emulator.cuopt.decode import decode_problem

    try:
        body = _body(job.body, CuOptError)
        if job.asset_path is not None:
            try:
                raw = Path(job.asset_path).read_bytes()
            except FileNotFoundError:
                return JobResult(
                    500, "the input asset was deleted before the request ran", ASSET_DOWNLOAD_FAILURE
                )
            data = decode_problem(raw)
        elif body.get("data") is None:
            raise CuOptError("requestBody.data is required unless an input asset is referenced", 400)
        else:
            data = body["data"]
        answer = solve(data, action=body.get("action"), client_version=body.get("client_version"))
        payload = json.dumps(answer, separators=(",", ":"), allow_nan=False).encode()
    except CuOptError as exc:
        return JobResult(exc.status, exc.message)
    except Exception as exc:  # noqa: BLE001 - the real container answers 500 for anything unexpected
        return JobResult(500, f"cuOpt failed: {type(exc).__name__}: {exc}")
    return _store(job, payload)


def _body(body: Any, error: type[Exception]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise error("requestBody must be a JSON object {action?, data, client_version?}", 422)
    extra = sorted(set(body) - BODY_KEYS)
    if extra:
        raise error(f"requestBody: extra inputs are not permitted: {', '.join(extra)}", 422)
    for key in ("action", "client_version"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise error(f"requestBody.{key} must be a string", 422)
    return body


def _store(job: SolveJob, payload: bytes) -> JobResult:
    directory = Path(job.result_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if len(payload) < job.max_inline_result:
        path = directory / f"{job.req_id}.json"
        path.write_bytes(payload)
        return JobResult(200, body_path=str(path), size=len(payload))
    path = directory / f"{job.req_id}.zip"
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr(f"{job.req_id}.response", b"{}")
        archive.writestr("large_result", payload)
    partial.replace(path)
    return JobResult(200, zip_path=str(path), size=len(payload))


def error_body(message: str) -> bytes:
    """cuOpt's error body, as the container sends it (pexec passes it through)."""
    return json.dumps({"error": message, "error_result": True}).encode()
