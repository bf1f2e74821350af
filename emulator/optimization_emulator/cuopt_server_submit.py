"""``POST /cuopt/request`` (submit a job) and ``POST /cuopt/solution`` (upload a routing solution).

What is checked at submission follows the reference (§2, §4.1, §8):

* both servers: the Content-Type (415 for unknown types; the emulator also refuses pickle,
  ``application/octet-stream``, with a 415 — the real server unpickles it), the ``Accept``, a
  ``Content-Length`` (required: the real server reads exactly that many bytes, so a chunked upload
  fails), ``CUOPT-DATA-FILE`` (400 unless it names a regular file inside the data directory), and
  ``CLIENT-VERSION`` (a mismatch only adds a warning);
* **legacy**: answers ``{"reqId"}`` even for a problem that does not decode or validate — the error
  surfaces on ``GET /cuopt/solution/{id}``; ``cache``/``reqId`` are supported;
* **proxy**: decodes and validates at once (400/422 at POST, ``error_result: false``), refuses
  ``Content-Length`` above ``max_request_bytes`` (413), and answers 501 for what it does not
  implement (``cache``, ``reqId``, batch LP, ``initialId`` on LP, ``POST /cuopt/solution``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from optimization_emulator.cuopt.decode import PICKLE_REFUSED, decode_typed
from optimization_emulator.cuopt.schema import CuOptError
from optimization_emulator.cuopt_server_codec import JSON, MSGPACK, PICKLE, SUBMIT, ZLIB, encode, request_type
from optimization_emulator.cuopt_server_config import SERVER_VERSION
from optimization_emulator.cuopt_server_files import data_file, result_file_name
from optimization_emulator.cuopt_server_http import CuOptHttpError, accept, answer, flag
from optimization_emulator.cuopt_server_jobs import State
from optimization_emulator.cuopt_server_worker import RESULT, ServerJob, problem_kind, validate
from optimization_emulator.storage import CHUNK_BYTES

if TYPE_CHECKING:
    from optimization_emulator.cuopt_server_api import CuOptServer

#: What a ``CUOPT-DATA-FILE`` holds, by its extension (the real server's rule is not documented;
#: these follow the sh client's own rule for local files). Other extensions: the request's type.
_TYPES_BY_EXTENSION = {".json": JSON, ".zlib": ZLIB, ".msgpack": MSGPACK, ".pickle": PICKLE}
IGNORED_INITIAL = (
    "initialId: initial solutions are accepted, but the emulator's routing heuristic does not use them"
)
IGNORED_WARMSTART = (
    "warmstartId: PDLP warm-start data is accepted, but HiGHS (the emulator's LP solver) does not use it"
)


@dataclasses.dataclass(frozen=True)
class SubmitOptions:
    validation_only: bool
    solver_logs: bool
    incumbents: bool
    cache: bool
    req_id: str | None
    warmstart_id: str | None
    initial_ids: tuple[str, ...]


def client_version_warnings(value: str | None, check: bool) -> list[str]:
    """The legacy server's ``CLIENT-VERSION`` check: never an error, at most a warning."""
    if not check or value == "custom":
        return []
    parts = (value or "").split(".")
    if len(parts) < 2:
        return [
            f"Client version missing or not the current format. Please upgrade your cuOpt client to "
            f"'{SERVER_VERSION}', or set the client version to 'custom' if this is a custom client."
        ]
    if ".".join(parts[:2]) != SERVER_VERSION:
        return [
            f"Client version is '{'.'.join(parts[:2])}' but server version is '{SERVER_VERSION}'. "
            "Please use a matching client."
        ]
    return []


def _options(request: web.Request, mime: str) -> SubmitOptions:
    query = request.query
    return SubmitOptions(
        validation_only=bool(flag(query, "validation_only", mime)),
        solver_logs=bool(flag(query, "solver_logs", mime)),
        incumbents=bool(flag(query, "incumbent_solutions", mime)),
        cache=bool(flag(query, "cache", mime)),
        req_id=query.get("reqId") or None,
        warmstart_id=query.get("warmstartId") or None,
        initial_ids=tuple(value for value in query.getall("initialId", []) if value),
    )


def _check(path: Path, content_type: str, legacy: bool) -> tuple[str, list[str]]:
    """Decodes and validates a problem (in a thread): its kind and validation warnings."""
    problem = decode_typed(path.read_bytes(), content_type)
    _response, warnings, _notes = validate(problem, legacy)
    return problem_kind(problem), warnings


async def submit(server: CuOptServer, request: web.Request) -> web.Response:
    body_type = request_type(request.headers.get("Content-Type"))
    mime = accept(request, SUBMIT, legacy=server.legacy, body_type=body_type)
    try:
        return await _submit(server, request, body_type, mime)
    except CuOptHttpError:
        server.count("requests_rejected")
        raise


async def _submit(
    server: CuOptServer, request: web.Request, body_type: str | None, mime: str
) -> web.Response:
    config, legacy = server.config, server.legacy
    if body_type is None:
        raise CuOptHttpError(
            415, f"unsupported Content-Type {request.headers.get('Content-Type')!r}", mime=mime
        )
    if body_type == PICKLE:
        raise CuOptHttpError(415, PICKLE_REFUSED, mime=mime)
    length = request.content_length
    if length is None and legacy:  # a required header: FastAPI refuses it before cuOpt's handler runs
        raise CuOptHttpError(422, "the Content-Length header is required", error_result=None, mime=mime)
    if not legacy and (length or 0) > config.max_request_bytes:
        raise CuOptHttpError(
            413, f"Content-Length exceeds maximum of {config.max_request_bytes} bytes", mime=mime
        )
    options = _options(request, mime)
    data_name = request.headers.get("CUOPT-DATA-FILE")
    if not legacy and (options.cache or options.req_id):
        raise CuOptHttpError(501, "cache and reqId are not supported by the cuOpt gRPC proxy", mime=mime)
    if options.cache and (options.req_id or options.initial_ids):
        raise CuOptHttpError(422, "cache cannot be combined with reqId or initialId", mime=mime)
    if data_name and (options.cache or options.req_id):
        raise CuOptHttpError(422, "CUOPT-DATA-FILE cannot be combined with cache or reqId", mime=mime)
    req_id = server.book.new_id()
    input_path, input_type = await _input(server, request, req_id, options, data_name, body_type, mime)
    warnings = client_version_warnings(request.headers.get("CLIENT-VERSION"), config.check_client)
    kind = None
    if not legacy or options.cache:  # the proxy validates at once; a cached problem is checked when stored
        try:
            kind, _ = await asyncio.to_thread(_check, input_path, input_type, legacy)
        except CuOptError as exc:
            raise CuOptHttpError(exc.status, exc.message, mime=mime) from None
        if kind == "batch" and not legacy:
            raise CuOptHttpError(501, "batch LP is not supported by the cuOpt gRPC proxy", mime=mime)
    warnings += _check_references(server, options, kind, mime)
    if options.cache:
        server.cache[req_id] = (input_path, input_type)
        server.count("cache_entries")
        return answer({"reqId": req_id}, mime)
    spec = ServerJob(
        req_id=req_id,
        job_dir=str(server.book.job_dir(req_id)),
        input_path=str(input_path),
        content_type=input_type,
        accept=mime,
        legacy=legacy,
        validation_only=options.validation_only,
        warnings=tuple(warnings),
        log_path=str(server.log_path(req_id)) if options.solver_logs else None,
        incumbents=options.incumbents and (legacy or kind == "milp"),
        result_file=_result_file(server, request, data_name) if legacy else None,
    )
    job = server.book.submit(spec, None if legacy else _result_file(server, request, data_name))
    job.kind = kind
    server.count("requests_submitted")
    if options.validation_only:
        server.count("validations")
    return answer({"reqId": req_id}, mime)


async def _input(
    server: CuOptServer,
    request: web.Request,
    req_id: str,
    options: SubmitOptions,
    data_name: str | None,
    body_type: str,
    mime: str,
) -> tuple[Path, str]:
    """Where the job's problem is, and its type: a data file, a cached problem, or the body."""
    if data_name:
        try:
            path = data_file(server.config.data_dir, data_name)
        except CuOptError as exc:
            raise CuOptHttpError(exc.status, exc.message, mime=mime) from None
        content_type = _TYPES_BY_EXTENSION.get(path.suffix.lower(), body_type)
        if content_type == PICKLE:
            raise CuOptHttpError(415, PICKLE_REFUSED, mime=mime)
        return path, content_type
    if options.req_id:
        if options.req_id not in server.cache:
            raise CuOptHttpError(404, f"cached data {options.req_id} does not exist", mime=mime)
        return server.cache[options.req_id]
    if not request.content_length:
        raise CuOptHttpError(422, "Data length is zero and reqId not set", mime=mime)
    folder = server.cache_dir if options.cache else server.book.job_dir(req_id)
    path = folder / (req_id if options.cache else "input")
    key = str(path.relative_to(server.store.root))
    await server.store.write_stream(key, request.content.iter_chunked(CHUNK_BYTES), 2**62)
    return path, body_type


def _check_references(server: CuOptServer, options: SubmitOptions, kind: str | None, mime: str) -> list[str]:
    """``initialId`` and ``warmstartId`` must name earlier jobs; neither changes the emulator's solve."""
    warnings = []
    if options.warmstart_id:
        if server.book.get(options.warmstart_id) is None:
            raise CuOptHttpError(404, f"job {options.warmstart_id} does not exist", mime=mime)
        if kind not in (None, "lp"):
            raise CuOptHttpError(400, "warmstartId applies to a single LP only", mime=mime)
        warnings.append(IGNORED_WARMSTART)
    if options.initial_ids:
        if not server.legacy and kind != "routing":
            raise CuOptHttpError(501, "initialId on LP is not supported by the cuOpt gRPC proxy", mime=mime)
        for initial in options.initial_ids:
            job = server.book.get(initial)
            if job is None:
                raise CuOptHttpError(
                    404 if server.legacy else 400, f"job {initial} does not exist", mime=mime
                )
            usable = job.state is State.COMPLETED and not job.failed and job.kind == "routing"
            if not server.legacy and not usable:
                raise CuOptHttpError(409, f"job {initial} is not a completed routing job", mime=mime)
        warnings.append(IGNORED_INITIAL)
    return warnings


def _result_file(
    server: CuOptServer, request: web.Request, data_name: str | None
) -> tuple[str, str, int, int] | None:
    config = server.config
    if config.result_dir is None:
        return None
    name = result_file_name(config.result_dir, request.headers.get("CUOPT-RESULT-FILE"), data_name)
    return str(config.result_dir), name, config.result_threshold, config.result_mode


async def upload_solution(server: CuOptServer, request: web.Request) -> web.Response:
    """``POST /cuopt/solution``: stores a routing solution (for ``initialId``) as a completed job."""
    body_type = request_type(request.headers.get("Content-Type"))
    mime = accept(request, SUBMIT, legacy=server.legacy, body_type=body_type)
    if not server.legacy:
        raise CuOptHttpError(501, "uploading solutions is not supported by the cuOpt gRPC proxy", mime=mime)
    if body_type in (None, PICKLE):
        raise CuOptHttpError(415, PICKLE_REFUSED if body_type else "unsupported Content-Type", mime=mime)
    try:
        solution: Any = decode_typed(await request.read(), body_type)
    except CuOptError as exc:
        raise CuOptHttpError(exc.status, exc.message, mime=mime) from None
    if not isinstance(solution, dict):
        raise CuOptHttpError(422, "a solution must be an object (a cuOpt routing result)", mime=mime)
    req_id = server.book.new_id()
    folder = server.book.job_dir(req_id)
    body = {"response": solution.get("response", solution), "reqId": req_id}
    await asyncio.to_thread((folder / RESULT).write_bytes, encode(body, mime))
    spec = ServerJob(req_id, str(folder), "", mime, mime, legacy=True)
    server.book.add_finished(spec, {"status": 200, "message": "", "kind": "routing"}, kind="routing")
    return answer({"reqId": req_id}, mime)
