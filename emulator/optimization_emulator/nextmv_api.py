"""The Nextmv Cloud API at ``/v1``: applications, instances, runs, uploads and downloads.

Shapes and behaviour follow shared/reference/nextmv.md (the wire protocol of the official SDK
1.13.0). Where the real service's behaviour is unknown, the comment at that spot says what the
emulator chose and why.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from optimization_emulator import nextmv_views as views
from optimization_emulator import presigned
from optimization_emulator.app_keys import CONFIG, PROTECTED_PREFIXES, STATS, STORE
from optimization_emulator.app_process import tail
from optimization_emulator.config import ARCHIVE_FORMATS, FORMATS, AppSpec
from optimization_emulator.errors import api_error, too_large
from optimization_emulator.nextmv_runs import (
    CONTENT_TYPES,
    Run,
    RunManager,
    new_run_id,
    payload_name,
    utc_now,
)
from optimization_emulator.storage import file_response

API = "nextmv"
APP_PATH = "/v1/applications/{app_id}"
RUN_PATH = APP_PATH + "/runs/{run_id}"
COUNTERS = (
    "runs_created",
    "uploads",
    "upload_bytes",
    "downloads",
    "status_polls",
    "result_requests",
    "cancels",
)
KEYED_COUNTERS = ("runs_created_by_app", "runs_finished_by_status")
_LOG_BYTES = 1024 * 1024


class NextmvService:
    """State of the emulated Nextmv account: its apps, issued uploads and runs."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        config = app[CONFIG]
        self.apps: dict[str, AppSpec] = config.apps
        self.created_at = utc_now()
        self.uploads: dict[str, str] = {}  # upload_id -> app_id it was issued for
        self.manager = RunManager(
            work_root=app[STORE].path("work"),
            limits=config.limits,
            max_parallel=config.max_parallel_runs,
            queue_delay=config.queue_delay,
            on_final=lambda run: app[STATS].incr_keyed(API, "runs_finished_by_status", run.status),
        )

    # -- lookups --------------------------------------------------------------------------------

    def app_spec(self, request: web.Request) -> AppSpec:
        app_id = request.match_info["app_id"]
        if app_id not in self.apps:
            raise api_error(web.HTTPNotFound, f"application {app_id!r} not found")
        return self.apps[app_id]

    def run(self, request: web.Request) -> Run:
        app = self.app_spec(request)
        run = self.manager.runs.get(request.match_info["run_id"])
        if run is None or run.app.id != app.id:
            raise api_error(web.HTTPNotFound, f"run {request.match_info['run_id']!r} not found in {app.id!r}")
        return run

    # -- applications and instances ---------------------------------------------------------------

    async def list_applications(self, request: web.Request) -> web.Response:
        items = [views.application(app, self.created_at) for app in self.apps.values()]
        return web.json_response(views.page(items, "items") if _paginated(request) else items)

    async def get_application(self, request: web.Request) -> web.Response:
        return web.json_response(views.application(self.app_spec(request), self.created_at))

    async def list_instances(self, request: web.Request) -> web.Response:
        app = self.app_spec(request)
        items = [views.instance(app, instance_id, self.created_at) for instance_id in app.instances]
        return web.json_response(views.page(items, "items") if _paginated(request) else items)

    async def get_instance(self, request: web.Request) -> web.Response:
        app = self.app_spec(request)
        instance_id = request.match_info["instance_id"]
        if instance_id not in app.instances:
            raise api_error(web.HTTPNotFound, f"instance {instance_id!r} not found in {app.id!r}")
        return web.json_response(views.instance(app, instance_id, self.created_at))

    # -- new runs ---------------------------------------------------------------------------------

    async def upload_url(self, request: web.Request) -> web.Response:
        app = self.app_spec(request)
        upload_id, url = presigned.new_upload(self.app, API)
        self.uploads[upload_id] = app.id
        return web.json_response({"upload_id": upload_id, "upload_url": url})

    async def new_run(self, request: web.Request) -> web.Response:
        app = self.app_spec(request)
        instance_id = request.query.get("instance_id") or app.default_instance
        if instance_id not in app.instances:
            raise api_error(web.HTTPNotFound, f"instance {instance_id!r} not found in {app.id!r}")
        body = await self._read_json_object(request)
        input_format, output_format = _formats(body.get("configuration"), app)
        options = _options(body.get("options"))
        run_id = new_run_id(instance_id, lambda candidate: candidate in self.manager.runs)
        directory = self.app[STORE].path(f"{API}/runs/{run_id}")
        input_path = directory / payload_name("input", input_format)
        payload = self._inline_payload(body, input_format)
        upload_key = None if payload is not None else presigned.upload_key(API, self._upload_id(body, app))
        directory.mkdir(parents=True)
        if upload_key is not None:
            await asyncio.to_thread(_link_or_copy, self.app[STORE].path(upload_key), input_path)
        else:
            input_path.write_bytes(payload)
        run = Run(
            id=run_id,
            app=app,
            instance_id=instance_id,
            directory=directory,
            input_format=input_format,
            output_format=output_format,
            input_path=input_path,
            input_size=input_path.stat().st_size,
            name=_string(body, "name"),
            description=_string(body, "description"),
            options=options,
        )
        self.manager.submit(run)
        self.app[STATS].incr(API, "runs_created")
        self.app[STATS].incr_keyed(API, "runs_created_by_app", app.id)
        # The SDK accepts any 2xx and the real code (200 or 202) is unknown; 200 suits clients that
        # check for exactly 200 as well as those that accept any success.
        return web.json_response({"run_id": run.id})

    async def _read_json_object(self, request: web.Request) -> dict[str, Any]:
        limit = request.client_max_size
        message = (
            f"request body is over {limit:,} bytes: inline input may be at most "
            f"{self.app[CONFIG].limits.inline_bytes:,} bytes (5 MiB); upload bigger inputs "
            "(POST .../runs/uploadurl, PUT to upload_url) and pass upload_id"
        )
        if request.content_length is not None and request.content_length > limit:
            raise too_large(message, limit, request.content_length)
        try:
            body = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            raise too_large(message, limit, request.content_length) from None
        except ValueError as exc:
            raise api_error(web.HTTPBadRequest, f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise api_error(web.HTTPBadRequest, "request body must be a JSON object")
        return body

    def _inline_payload(self, body: dict[str, Any], input_format: str) -> bytes | None:
        """The bytes of an inline ``input``, or None when the run names an ``upload_id``."""
        if body.get("input_id") is not None:
            raise api_error(web.HTTPBadRequest, "managed inputs (input_id) are not supported by the emulator")
        has_input, has_upload = body.get("input") is not None, body.get("upload_id") is not None
        if has_input == has_upload:
            raise api_error(web.HTTPBadRequest, "give exactly one of 'input' (inline JSON) and 'upload_id'")
        if not has_input:
            return None
        if input_format in ARCHIVE_FORMATS:
            raise api_error(
                web.HTTPBadRequest,
                f"{input_format} input must be uploaded as a tar.gz and passed as upload_id",
            )
        value = body["input"]
        if input_format == "text" and isinstance(value, str):
            payload = value.encode("utf-8")
        else:  # measured as the SDK measures it: deflated JSON, ASCII-escaped
            payload = json.dumps(value, separators=(",", ":")).encode("ascii")
        limit = self.app[CONFIG].limits.inline_bytes
        if len(payload) > limit:
            raise too_large(
                f"inline input is {len(payload):,} bytes, over the {limit:,}-byte (5 MiB) limit: upload it "
                "(POST .../runs/uploadurl, PUT to upload_url) and pass upload_id instead",
                limit,
                len(payload),
            )
        return payload

    def _upload_id(self, body: dict[str, Any], app: AppSpec) -> str:
        upload_id = str(body["upload_id"])
        if self.uploads.get(upload_id) != app.id:
            raise api_error(web.HTTPBadRequest, f"unknown upload_id {upload_id!r} for application {app.id!r}")
        if not self.app[STORE].exists(presigned.upload_key(API, upload_id)):
            raise api_error(
                web.HTTPBadRequest, f"upload {upload_id!r} has no data: PUT the input to its upload_url first"
            )
        return upload_id

    # -- run status and results -------------------------------------------------------------------

    async def list_runs(self, request: web.Request) -> web.Response:
        app = self.app_spec(request)
        items = [views.run_list_item(run) for run in self.manager.runs.values() if run.app.id == app.id]
        return web.json_response(views.page(items, "runs") if _paginated(request) else {"runs": items})

    async def run_metadata(self, request: web.Request) -> web.Response:
        run = self.run(request)
        self.app[STATS].incr(API, "status_polls")
        return web.json_response(views.run_information(run))

    async def run_result(self, request: web.Request) -> web.Response:
        run = self.run(request)
        self.app[STATS].incr(API, "result_requests")
        result = views.run_information(run)
        if run.status == "failed":
            result["error_log"] = views.error_log(run)
        if run.output_path is not None:
            if _wants_url(request):
                result["output"] = {"url": self._download_url(run, "output")}
            else:
                self._check_inline(run, "output", run.output_format, run.output_size)
                result["output"] = await asyncio.to_thread(_read_json, run.output_path)
        return web.json_response(result)

    async def run_payload(self, request: web.Request) -> web.StreamResponse:
        """GET /runs/{id}/output and /input: the raw JSON, or ``{"url": ...}`` with format=url."""
        run = self.run(request)
        kind = request.match_info["kind"]
        path, fmt, size = run.payload(kind)
        if path is None:
            # Unknown what the real API answers for a run without output; 404 says it plainly.
            raise api_error(web.HTTPNotFound, f"run {run.id!r} has no output (status {run.status})")
        if _wants_url(request):
            return web.json_response({"url": self._download_url(run, kind)})
        self._check_inline(run, kind, fmt, size)
        return file_response(path, CONTENT_TYPES[fmt])

    def _check_inline(self, run: Run, kind: str, fmt: str, size: int) -> None:
        """Only JSON within the inline limit is sent inline (real 400 for non-JSON: SDK issue #130;
        for JSON over 5 MiB the real behaviour is unknown and 400 is the emulator's guess)."""
        if fmt != "json":
            raise api_error(
                web.HTTPBadRequest, f"the {kind} of {run.id!r} is {fmt}: request it with format=url"
            )
        limit = self.app[CONFIG].limits.inline_bytes
        if size > limit:
            raise api_error(
                web.HTTPBadRequest,
                f"the {kind} of {run.id!r} is {size:,} bytes, over the {limit:,}-byte (5 MiB) inline limit: "
                "request it with format=url",
            )

    def _download_url(self, run: Run, kind: str) -> str:
        return presigned.download_url(self.app, f"{presigned.PREFIX}/{API}/runs/{run.id}/{kind}")

    async def download(self, request: web.Request) -> web.StreamResponse:
        """The presigned GET behind ``format=url``: no API key, the signature is in the query string.

        The signature is checked before the run is looked up, so a bad URL never learns whether a run
        exists."""
        run = self.manager.runs.get(request.match_info["run_id"])
        path, fmt, _size = run.payload(request.match_info["kind"]) if run else (None, "json", 0)
        return presigned.send_download(request, API, path, CONTENT_TYPES[fmt])

    async def run_logs(self, request: web.Request) -> web.Response:
        """The run's stderr so far (its last MiB)."""
        run = self.run(request)
        log = await asyncio.to_thread(tail, run.log_path, _LOG_BYTES, None)
        return web.json_response({"log": log})

    # -- cancel and delete ------------------------------------------------------------------------

    async def cancel_run(self, request: web.Request) -> web.Response:
        run = self.run(request)
        self.app[STATS].incr(API, "cancels")
        # Cancelling a run that already ended is a no-op answered with 200 (the real answer is
        # unknown): cancel is naturally idempotent, and a client racing a run's end must not fail.
        await self.manager.cancel(run)
        return web.json_response({})

    async def delete_run(self, request: web.Request) -> web.Response:
        await self.manager.delete(self.run(request))
        return web.json_response({})

    async def shutdown(self, _app: web.Application) -> None:
        await self.manager.shutdown()


def _paginated(request: web.Request) -> bool:
    return request.query.get("pagereturn", "").lower() == "true"


def _wants_url(request: web.Request) -> bool:
    return request.query.get("format") == "url"


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise api_error(web.HTTPBadRequest, f"'{key}' must be a string")
    return value


def _options(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise api_error(web.HTTPBadRequest, "'options' must be an object of strings")
    bad = [key for key, item in value.items() if not isinstance(item, str)]
    if bad:
        raise api_error(
            web.HTTPBadRequest,
            f"'options' values must be strings (as the SDK sends them); not strings: {', '.join(bad)}",
        )
    return dict(value)


def _formats(configuration: Any, app: AppSpec) -> tuple[str, str]:
    """``configuration.format.{input,output}.type``, falling back to the app's defaults."""
    if configuration is None:
        return app.input_format, app.output_format
    if not isinstance(configuration, dict):
        raise api_error(web.HTTPBadRequest, "'configuration' must be an object")
    fmt = configuration.get("format") or {}
    chosen = []
    for side, default in (("input", app.input_format), ("output", app.output_format)):
        value = ((fmt.get(side) or {}) if isinstance(fmt, dict) else {}).get("type") or default
        if value not in FORMATS:
            raise api_error(
                web.HTTPBadRequest, f"unknown {side} format {value!r} (one of {', '.join(FORMATS)})"
            )
        chosen.append(value)
    return chosen[0], chosen[1]


def _link_or_copy(source: Path, target: Path) -> None:
    """The run keeps its own name for the uploaded bytes (a hard link; a copy across filesystems)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _read_json(path: Path) -> Any:
    with path.open("rb") as handle:
        return json.load(handle)


SERVICE = web.AppKey("nextmv_service", NextmvService)


def setup(app: web.Application) -> None:
    """Registers the Nextmv routes and counters on the emulator ``app``."""
    service = NextmvService(app)
    app[SERVICE] = service
    app[STATS].declare(API, COUNTERS, KEYED_COUNTERS)
    app[PROTECTED_PREFIXES].append("/v1/")
    app.on_shutdown.append(service.shutdown)
    route = app.router.add_route
    route("GET", "/v1/applications", service.list_applications)
    route("GET", APP_PATH, service.get_application)
    route("GET", APP_PATH + "/instances", service.list_instances)
    route("GET", APP_PATH + "/instances/{instance_id}", service.get_instance)
    route("POST", APP_PATH + "/runs/uploadurl", service.upload_url)
    route("POST", APP_PATH + "/runs", service.new_run)
    route("GET", APP_PATH + "/runs", service.list_runs)
    route("GET", RUN_PATH, service.run_result)
    route("DELETE", RUN_PATH, service.delete_run)
    route("GET", RUN_PATH + "/metadata", service.run_metadata)
    route("GET", RUN_PATH + "/{kind:input|output}", service.run_payload)
    route("GET", RUN_PATH + "/logs", service.run_logs)
    route("PATCH", RUN_PATH + "/cancel", service.cancel_run)
    route("GET", presigned.PREFIX + f"/{API}/runs/{{run_id}}/{{kind:input|output}}", service.download)
