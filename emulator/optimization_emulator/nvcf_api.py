"""The NVCF API for cuOpt at ``/v2/nvcf`` and ``/token``: functions, assets, exec and pexec.

Shapes follow shared/reference/cuopt_nvcf.md (§§1-5, 12) so that the unmodified cuOpt thin
client and this provider's hooks work against the emulator:

* ``POST /v2/nvcf/exec/functions/{id}[/versions/{vid}]`` takes the envelope ``{"requestHeader":
  {"inputAssetReferences", "pollDurationSeconds"}, "requestBody": {...}}`` and holds the request up
  to the poll window: 200 ``{"reqId", "status": "fulfilled", "percentComplete": 100, "response"}``
  (or ``"responseReference"``, a presigned zip URL, for results of 5 MiB or more), 202
  ``{"reqId", "status": "pending-evaluation"}`` when the window ends first, or — when the function
  failed — the failure's HTTP status with ``{"reqId", "status": "errored", "errorCode",
  "errorMessage", "detail"}``. ``GET /v2/nvcf/exec/status/{reqId}`` polls the same way.
* ``/v2/nvcf/pexec/...`` are the pass-through twins: the container body as is, poll window and
  assets in ``NVCF-POLL-SECONDS`` / ``NVCF-INPUT-ASSET-REFERENCES``, 302 ``Location`` for large
  results, cuOpt's error body with its status for failures.

Platform errors (auth, unknown function or request, bad envelope) are problem+json.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from optimization_emulator import presigned
from optimization_emulator.app_keys import CONFIG, STATS, STORE
from optimization_emulator.errors import problem
from optimization_emulator.nvcf_assets import UPLOAD_ROUTE, AssetRegistry
from optimization_emulator.nvcf_auth import NvcfAuth, TokenIssuer
from optimization_emulator.nvcf_requests import Invocation, InvocationBook, SolverPool
from optimization_emulator.nvcf_worker import ASSET_DOWNLOAD_FAILURE, JobResult, SolveJob, error_body

API = "nvcf"
BASE = "/v2/nvcf"
COUNTERS = (
    "invocations",
    "status_polls",
    "results_delivered",
    "large_results",
    "assets_created",
    "assets_deleted",
    "uploads",
    "upload_bytes",
    "downloads",
    "tokens_issued",
    "auth_failures",
)
KEYED_COUNTERS = ("invocations_by_function", "results_by_status")
RESULT_ROUTE = presigned.PREFIX + "/nvcf/results/{req_id:[0-9a-f-]+}.zip"
RESULT_PATH = presigned.PREFIX + "/nvcf/results/{}.zip"
_EXPOSE = {"Access-Control-Expose-Headers": "nvcf-reqid"}


class NvcfService:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.config = app[CONFIG].nvcf
        self.stats = app[STATS]
        self.auth = NvcfAuth(app[CONFIG].api_keys, self.config.clients, TokenIssuer(self.config.token_ttl))
        self.auth.on_token = functools.partial(self.stats.incr, API, "tokens_issued")
        self.auth.on_rejected = functools.partial(self.stats.incr, API, "auth_failures")
        self.assets = AssetRegistry(app, self.config, self.stats)
        self.book = InvocationBook(SolverPool(self.config.max_parallel), self.config.queue_delay)
        self.result_dir = app[STORE].path(f"{API}/results")

    # -- functions ------------------------------------------------------------------------------------
    async def list_functions(self, request: web.Request) -> web.Response:
        return web.json_response({"functions": list(self.config.functions)})

    async def list_versions(self, request: web.Request) -> web.Response:
        function_id = request.match_info["function_id"]
        versions = [f for f in self.config.functions if f["id"] == function_id]
        if not versions:
            raise problem(web.HTTPNotFound, f"Function '{function_id}' not found")
        return web.json_response({"functions": versions})

    def _version(self, request: web.Request) -> tuple[str, str]:
        """The (function id, version id) to run: a named version, else the newest ACTIVE one."""
        function_id, version_id = request.match_info["function_id"], request.match_info.get("version_id")
        versions = [f for f in self.config.functions if f["id"] == function_id]
        if version_id is not None:
            versions = [f for f in versions if f["versionId"] == version_id]
        if not versions:
            what = f"Function '{function_id}'" + (f" version '{version_id}'" if version_id else "")
            raise problem(web.HTTPNotFound, f"{what} not found")
        active = [f for f in versions if f["status"] == "ACTIVE"]
        if not active:
            states = ", ".join(sorted({f["status"] for f in versions}))
            raise problem(
                web.HTTPBadRequest, f"Function '{function_id}' has no ACTIVE version to run ({states})"
            )
        chosen = max(active, key=lambda f: dt.datetime.fromisoformat(f["createdAt"]))
        return function_id, chosen["versionId"]

    # -- invocation -----------------------------------------------------------------------------------
    async def exec_invoke(self, request: web.Request) -> web.Response:
        function = self._version(request)
        envelope = _json_object(await self._read_body(request), "the exec request body")
        header = envelope.get("requestHeader") or {}
        if not isinstance(header, dict) or "requestBody" not in envelope:
            raise problem(
                web.HTTPBadRequest, 'the body must be {"requestHeader": {...}, "requestBody": {...}}'
            )
        assets = _asset_ids(header.get("inputAssetReferences"))
        window = self._window(header.get("pollDurationSeconds", request.headers.get("NVCF-POLL-SECONDS")))
        invocation = self._submit(function, envelope["requestBody"], assets)
        return await self._answer(request, invocation, window, pexec=False)

    async def pexec_invoke(self, request: web.Request) -> web.Response:
        function = self._version(request)
        raw = await self._read_body(request)
        assets = _asset_ids(request.headers.get("NVCF-INPUT-ASSET-REFERENCES", "").replace(",", " ").split())
        window = self._window(request.headers.get("NVCF-POLL-SECONDS"))
        try:
            body: Any = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = _Unparsable()
        invocation = self._submit(function, body, assets)
        return await self._answer(request, invocation, window, pexec=True)

    async def status(self, request: web.Request) -> web.Response:
        req_id = request.match_info["req_id"]
        self.stats.incr(API, "status_polls")
        invocation = self.book.get(req_id)
        if invocation is None:
            raise _unknown_request(req_id)
        window = self._window(request.headers.get("NVCF-POLL-SECONDS"))
        return await self._answer(
            request, invocation, window, pexec=request.path.startswith(f"{BASE}/pexec/")
        )

    def _submit(self, function: tuple[str, str], body: Any, assets: list[str]) -> Invocation:
        def prepare(req_id: str) -> SolveJob | JobResult:
            paths = [self.assets.data_path(asset_id) for asset_id in assets]
            missing = [a for a, path in zip(assets, paths) if path is None]
            if missing:
                return JobResult(
                    500,
                    f"NVCF could not download input asset(s) {', '.join(missing)}: unknown, deleted, or "
                    "never uploaded",
                    ASSET_DOWNLOAD_FAILURE,
                )
            if isinstance(body, _Unparsable):
                return JobResult(400, "the request body is not valid JSON")
            return SolveJob(
                req_id,
                body,
                str(paths[0]) if paths else None,
                str(self.result_dir),
                self.config.max_inline_result,
            )

        invocation = self.book.submit(*function, prepare)
        self.stats.incr(API, "invocations")
        self.stats.incr_keyed(API, "invocations_by_function", function[0])
        return invocation

    async def _answer(
        self, request: web.Request, invocation: Invocation, window: int, *, pexec: bool
    ) -> web.Response:
        # A long poll whose client hung up (killed worker or triggerer) must not consume the
        # once-only answer: it could never be delivered. Assumed of the real gateway too, which
        # relays the answer only on an open connection (unverified; see docs/emulator.md).
        if await self.book.wait(invocation, window) and not _client_gone(request):
            taken = self.book.take(invocation.req_id)
            if taken is None:  # a concurrent poll received the answer first
                raise _unknown_request(invocation.req_id)
            return await self._final(taken, pexec)
        headers = {"NVCF-REQID": invocation.req_id, **_EXPOSE}
        if pexec:
            return web.Response(status=202, headers={**headers, "NVCF-STATUS": "in-progress"})
        headers["NVCF-STATUS"] = "pending-evaluation"
        return web.json_response(
            {"reqId": invocation.req_id, "status": "pending-evaluation"}, status=202, headers=headers
        )

    async def _final(self, invocation: Invocation, pexec: bool) -> web.Response:
        result, req_id = invocation.result, invocation.req_id
        assert result is not None
        status = "fulfilled" if result.ok else "errored"
        self.stats.incr(API, "results_delivered")
        self.stats.incr_keyed(API, "results_by_status", status)
        headers = {"NVCF-REQID": req_id, "NVCF-STATUS": status, **_EXPOSE}
        if not result.ok:
            return _error_answer(req_id, result, headers, pexec)
        if result.zip_path is not None:
            self.stats.incr(API, "large_results")
            url = presigned.download_url(self.app, RESULT_PATH.format(req_id), ttl=self.config.result_url_ttl)
            asyncio.get_running_loop().call_later(
                self.config.result_url_ttl, functools.partial(Path(result.zip_path).unlink, missing_ok=True)
            )
            if pexec:
                return web.Response(status=302, headers={**headers, "Location": url})
            envelope = {"reqId": req_id, "status": status, "percentComplete": 100, "responseReference": url}
            return web.json_response(envelope, headers=headers)
        assert result.body_path is not None
        body = await asyncio.to_thread(_read_and_remove, Path(result.body_path))
        if not pexec:
            head = json.dumps({"reqId": req_id, "status": status, "percentComplete": 100})[:-1]
            body = f'{head}, "response": '.encode() + body + b"}"
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def download_result(self, request: web.Request) -> web.StreamResponse:
        path = self.result_dir / f"{request.match_info['req_id']}.zip"
        return presigned.send_download(request, API, path, "application/zip")

    # -- request details ------------------------------------------------------------------------------
    async def _read_body(self, request: web.Request) -> bytes:
        """The request body, refused with 413 past ``max_request_bytes`` (checked while reading)."""
        limit = self.config.max_request_bytes
        detail = (
            f"the request body is over {limit:,} bytes: upload large problems as an asset "
            "(POST /v2/nvcf/assets) and reference it in inputAssetReferences"
        )
        if request.content_length is not None and request.content_length > limit:
            raise problem(
                web.HTTPRequestEntityTooLarge, detail, init_args=_sizes(limit, request.content_length)
            )
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise problem(web.HTTPRequestEntityTooLarge, detail, init_args=_sizes(limit, len(body)))
        return bytes(body)

    def _window(self, value: Any) -> int:
        """The long-poll window in seconds (default when not given; 400 when out of range)."""
        if value is None:
            return self.config.poll_seconds
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            seconds = int(value) if not isinstance(value, (bool, float)) else None
        except ValueError:
            seconds = None
        if seconds is None or not 0 <= seconds <= self.config.max_poll_seconds:
            raise problem(
                web.HTTPBadRequest,
                f"pollDurationSeconds / NVCF-POLL-SECONDS must be an integer from 0 to "
                f"{self.config.max_poll_seconds}, got {value!r}",
            )
        return seconds

    async def shutdown(self, _app: web.Application) -> None:
        await self.book.shutdown()


class _Unparsable:
    """A pexec body that is not JSON (the container answers it with an error)."""


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise problem(web.HTTPBadRequest, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise problem(web.HTTPBadRequest, f"{what} must be a JSON object")
    return value


def _asset_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise problem(web.HTTPBadRequest, "inputAssetReferences must be a list of asset ids")
    return list(value)


def _sizes(limit: int, size: int) -> dict[str, int]:
    return {"max_size": limit, "actual_size": size}


def _unknown_request(req_id: str) -> web.HTTPException:
    return problem(
        web.HTTPNotFound,
        f"Request '{req_id}' not found: unknown, or its result was already delivered "
        "(NVCF hands a result out once)",
    )


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _error_answer(req_id: str, result: JobResult, headers: dict[str, str], pexec: bool) -> web.Response:
    """A failed request: the failure's HTTP status; exec wraps the message in the envelope."""
    code = result.nvcf_error_code
    if not pexec:
        envelope = {
            "reqId": req_id,
            "status": "errored",
            "errorCode": code,
            "errorMessage": result.message,
            "detail": result.message,
        }
        return web.json_response(envelope, status=result.http_status, headers=headers)
    if code != result.http_status:  # a platform failure (910...), not the container's answer
        raise problem(
            web.HTTPInternalServerError,
            result.message,
            init_args={"headers": headers},
            errorCode=code,
            reqId=req_id,
        )
    return web.Response(
        body=error_body(result.message),
        status=result.http_status,
        content_type="application/json",
        headers=headers,
    )


def _read_and_remove(path: Path) -> bytes:
    data = path.read_bytes()
    path.unlink(missing_ok=True)
    return data


SERVICE = web.AppKey("nvcf_service", NvcfService)


def setup(app: web.Application) -> None:
    """Registers the NVCF routes, counters and gauges on the emulator ``app``."""
    service = NvcfService(app)
    app[SERVICE] = service
    app[STATS].declare(
        API,
        COUNTERS,
        KEYED_COUNTERS,
        gauges={"assets_live": service.assets.live_ids, "requests_pending": service.book.pending},
    )
    app.on_shutdown.append(service.shutdown)
    invoke, listing = service.auth.require("invoke_function"), service.auth.require("list_functions")
    route = app.router.add_route
    route("POST", "/token", service.auth.token)
    route("GET", f"{BASE}/functions", listing(service.list_functions))
    route("GET", f"{BASE}/functions/{{function_id}}/versions", listing(service.list_versions))
    route("POST", f"{BASE}/assets", invoke(service.assets.create))
    route("GET", f"{BASE}/assets", invoke(service.assets.list))
    route("GET", f"{BASE}/assets/{{asset_id}}", invoke(service.assets.get))
    route("DELETE", f"{BASE}/assets/{{asset_id}}", invoke(service.assets.delete))
    route("PUT", UPLOAD_ROUTE, service.assets.upload)
    route("GET", RESULT_ROUTE, service.download_result)
    for style, handler in (("exec", service.exec_invoke), ("pexec", service.pexec_invoke)):
        route("POST", f"{BASE}/{style}/functions/{{function_id}}", invoke(handler))
        route("POST", f"{BASE}/{style}/functions/{{function_id}}/versions/{{version_id}}", invoke(handler))
        route("GET", f"{BASE}/{style}/status/{{req_id}}", invoke(service.status))
