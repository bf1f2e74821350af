"""Reading and ending jobs: solution, status, abort, delete, incumbents and solver logs.

Legacy server and gRPC proxy differ here where a client can tell (reference §4, §5, §8):

==========================  =============================================  ===========================
situation                   legacy                                         proxy
==========================  =============================================  ===========================
GET an aborted job          500 ``<id> was aborted``, error_result true    409 ``job <id> cancelled``
GET a failed job            the failure's status, error_result true        409 ``job <id> failed``
status of a failed job      ``completed``                                  ``aborted``
DELETE request with flags   honoured; ``*`` needs one                      501 (and for ``*``)
large result file           written when the job completes                 written at each GET
log of a job not ready      404 ``log not found ...``                      ``{"log": [""], "nbytes"}``
DELETE log                  removes ``log_<id>`` (404 if none), JSON null  no-op, empty 200
==========================  =============================================  ===========================
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from optimization_emulator.cuopt_server_codec import INCUMBENTS, SOLUTION, STATUS, transcode
from optimization_emulator.cuopt_server_files import write_result_file
from optimization_emulator.cuopt_server_http import (
    CuOptHttpError,
    accept,
    answer,
    error,
    flag,
    json_null,
    raw,
    unknown_job,
)
from optimization_emulator.cuopt_server_jobs import Job, State
from optimization_emulator.cuopt_server_worker import file_answer
from optimization_emulator.storage import file_response

if TYPE_CHECKING:
    from optimization_emulator.cuopt_server_api import CuOptServer


def _job(server: CuOptServer, request: web.Request, mime: str) -> Job:
    job = server.book.get(request.match_info["req_id"])
    if job is None:
        raise unknown_job(request.match_info["req_id"], mime)
    return job


def _solution_mime(server: CuOptServer, request: web.Request, endpoint: str = SOLUTION) -> str:
    job = server.book.get(request.match_info["req_id"])
    return accept(request, endpoint, legacy=server.legacy, job_type=job.spec.accept if job else None)


async def solution(server: CuOptServer, request: web.Request) -> web.StreamResponse:
    """``GET /cuopt/solution/{id}``: exactly ``{"reqId"}`` while pending, then the result (read as
    often as wanted until deleted) or the job's error."""
    server.count("solution_polls")
    mime = _solution_mime(server, request)
    job = _job(server, request, mime)
    if not job.done:
        return answer({"reqId": job.req_id}, mime)
    if job.state is State.ABORTED:
        if server.legacy:
            return error(500, f"{job.req_id} was aborted", mime, error_result=True)
        return error(409, f"job {job.req_id} cancelled", mime)
    outcome = job.outcome or {}
    if job.failed:
        if server.legacy:
            return error(outcome["status"], outcome["message"], mime, error_result=True)
        return error(409, f"job {job.req_id} failed", mime)
    server.count("results_delivered")
    # Stored in the type chosen at submission: sent as it is when the GET asks for that type (or a
    # wildcard), else decoded and encoded again, as the legacy server does.
    stored = job.spec.accept
    if outcome.get("file_answer"):
        return answer(outcome["file_answer"], mime)
    target = job.result_file_at_get
    if target is not None and outcome.get("size", 0) >= target[2]:  # the proxy writes it at each GET
        folder, name, _threshold, mode = target
        data = await asyncio.to_thread(job.result_path.read_bytes)
        await asyncio.to_thread(write_result_file, Path(folder), name, data, mode)
        server.count("result_files")
        notes = (outcome.get("warnings", []), outcome.get("notes", []))
        return answer(file_answer(name, stored, *notes, always=True), mime)
    if mime == stored:
        return file_response(job.result_path, stored)
    data = await asyncio.to_thread(job.result_path.read_bytes)
    return raw(await asyncio.to_thread(transcode, data, stored, mime), mime)


async def delete_solution(server: CuOptServer, request: web.Request) -> web.Response:
    """``DELETE /cuopt/solution/{id}``: a finished job's result is removed (200, empty body, no
    Content-Type); afterwards its id is unknown (404). A job still pending has no solution to
    delete and is left alone (the legacy server only removes finished results)."""
    mime = _solution_mime(server, request)
    job = _job(server, request, mime)
    if job.done:
        await asyncio.to_thread(server.book.remove, job)
        server.count("requests_deleted")
    return web.Response(status=200)


async def status(server: CuOptServer, request: web.Request) -> web.Response:
    """``GET /cuopt/request/{id}`` (the sh client appends a bare ``?status``, ignored)."""
    server.count("status_polls")
    mime = accept(request, STATUS, legacy=server.legacy)
    job = _job(server, request, mime)
    state = job.state.value
    if job.failed and not server.legacy:  # the proxy maps gRPC FAILED to "aborted"; legacy says completed
        state = State.ABORTED.value
    return answer(state, mime)


async def abort(server: CuOptServer, request: web.Request) -> web.Response:
    """``DELETE /cuopt/request/{id}?running=&queued=&cached=``: aborts a queued or running job (its
    solver process is killed) or drops a cached problem: ``{"queued", "running", "cached"}`` counts."""
    server.count("abort_requests")
    mime = accept(request, STATUS, legacy=server.legacy)
    req_id = request.match_info["req_id"]
    given = {name: flag(request.query, name, mime) for name in ("running", "queued", "cached")}
    if not server.legacy and (req_id == "*" or any(value is not None for value in given.values())):
        raise CuOptHttpError(501, "the cuOpt gRPC proxy cancels one job by id, without flags", mime=mime)
    if req_id == "*" and not any(given.values()):
        raise CuOptHttpError(400, "aborting '*' needs at least one of running, queued, cached", mime=mime)
    if all(value is None for value in given.values()):  # a specific id without flags: everything
        given = dict.fromkeys(given, True)
    running, queued, cached = (bool(given[name]) for name in ("running", "queued", "cached"))
    jobs = server.book.jobs() if req_id == "*" else [job for job in [server.book.get(req_id)] if job]
    counts = {"queued": 0, "running": 0, "cached": 0}
    for job in jobs:
        q, r = server.book.abort(job, queued=queued, running=running)
        counts["queued"] += q
        counts["running"] += r
    if cached:
        for key in list(server.cache) if req_id == "*" else [req_id]:
            entry = server.cache.pop(key, None)
            if entry is not None:
                counts["cached"] += 1
                await asyncio.to_thread(entry[0].unlink, missing_ok=True)
    return answer(counts, mime)


async def incumbents(server: CuOptServer, request: web.Request) -> web.Response:
    """``GET /cuopt/solution/{id}/incumbents``: the MIP incumbents since the last read, then the
    sentinel ``[{"solution": [], "cost": null, "bound": null}]`` once the job is done."""
    server.count("incumbent_reads")
    mime = _solution_mime(server, request, INCUMBENTS)
    job = _job(server, request, mime)
    if not server.legacy and job.kind == "routing":
        raise unknown_job(job.req_id, mime)  # the proxy has no incumbents for routing jobs
    return answer(await asyncio.to_thread(server.book.take_incumbents, job), mime)


def _log_request(server: CuOptServer, request: web.Request) -> tuple[str, int, str]:
    mime = accept(request, STATUS, legacy=server.legacy)
    req_id = request.match_info["req_id"]
    try:
        uuid.UUID(req_id)
    except ValueError:
        raise CuOptHttpError(400, f"{req_id} is not a valid request id", mime=mime) from None
    try:
        start = int(request.query.get("frombyte", "0"))
    except ValueError:
        start = -1
    if start < 0:
        raise CuOptHttpError(422, "frombyte must be an integer >= 0", mime=mime)
    return req_id, start, mime


async def log(server: CuOptServer, request: web.Request) -> web.Response:
    """``GET /cuopt/log/{id}?frombyte=N``: the solver log from byte N, ``{"log": [lines], "nbytes":
    <offset after this read>}``; pass ``nbytes`` as the next ``frombyte``."""
    server.count("log_reads")
    req_id, start, mime = _log_request(server, request)
    path = server.log_path(req_id)
    if not server.legacy:
        job = server.book.get(req_id)
        if job is None or job.spec.log_path is None or job.spec.validation_only or job.kind == "routing":
            return error(404, f"log not found for request {req_id}", mime, error_result=None)
        if not path.exists():  # the job has not started logging yet
            return answer({"log": [""], "nbytes": start}, mime)
    data = await asyncio.to_thread(_read_from, path, start)
    if data is None:
        return error(404, f"log not found for request {req_id}", mime, error_result=None)
    return answer(
        {"log": data.decode("utf-8", errors="replace").split("\n"), "nbytes": start + len(data)}, mime
    )


def _read_from(path: Path, start: int) -> bytes | None:
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            return handle.read()
    except FileNotFoundError:
        return None


async def delete_log(server: CuOptServer, request: web.Request) -> web.Response:
    req_id, _start, mime = _log_request(server, request)
    if not server.legacy:
        return web.Response(status=200)  # the gRPC server drops logs with their job
    path = server.log_path(req_id)
    if not path.exists():
        return error(404, f"log not found for request {req_id}", mime, error_result=None)
    await asyncio.to_thread(path.unlink, missing_ok=True)
    return json_null()
