"""The self-hosted cuOpt server REST API (``cuopt_server`` 26.10) under ``/cuopt``, on its own port.

Following shared/reference/cuopt_selfhosted.md so that the unmodified ``cuopt-sh-client`` works
against it: ``POST /cuopt/request`` answers ``{"reqId"}`` at once, jobs are solved asynchronously by
real CPU solvers (``cuopt_server_jobs``), ``GET /cuopt/solution/{id}`` answers exactly ``{"reqId"}``
until the result envelope is there, which stays until ``DELETE /cuopt/solution/{id}``.

The routes live on a second aiohttp application, served on ``--cuopt-server-port`` beside the main
site (``/v1``, ``/v2/nvcf``), because the real server is its own service. It shares the main site's
counters, request log and fault rules, so the admin endpoints on the main port (stats, requests,
faults) cover it too. There is no authentication, as on the real server (§9).

``--cuopt-server-mode`` chooses between the legacy server (the container default) and the gRPC
proxy, which differ where a client can tell (§8): see ``cuopt_server_submit`` and
``cuopt_server_results``. Handlers for those live there; this module wires them up.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from optimization_emulator import cuopt_server_results as results
from optimization_emulator import cuopt_server_submit as submit
from optimization_emulator import faults
from optimization_emulator.app_keys import CONFIG, FAULT_BODY, REQUEST_LOG, SITES, STATS, STORE, Site
from optimization_emulator.cuopt_server_codec import JSON, encode
from optimization_emulator.cuopt_server_config import PROXY_FULL_VERSION, SERVER_VERSION
from optimization_emulator.cuopt_server_http import answer, render_errors
from optimization_emulator.cuopt_server_jobs import Job, JobBook, State
from optimization_emulator.recording import record_requests

API = "cuopt_server"
COUNTERS = (
    "requests_submitted",
    "requests_rejected",
    "validations",
    "requests_solved",
    "requests_failed",
    "requests_aborted",
    "requests_deleted",
    "solution_polls",
    "results_delivered",
    "result_files",
    "status_polls",
    "abort_requests",
    "incumbent_reads",
    "log_reads",
    "cache_entries",
)
KEYED_COUNTERS = ("requests_by_kind", "results_by_status")
HEALTH_PATHS = ("/", "/cuopt/health", "/v2/health/ready", "/v2/health/live")
#: Slack over the proxy's request-size cap for aiohttp's own body limit (never reached first).
_BODY_SLACK = 1024


class CuOptServer:
    """The state of one emulated server: its settings, jobs, cached problems and solver logs."""

    def __init__(self, main: web.Application) -> None:
        self.config = main[CONFIG].cuopt_server
        self.store = main[STORE]
        self.stats = main[STATS]
        root = self.store.path(API)
        self.book = JobBook(root / "jobs", self.config.max_parallel, self.config.queue_delay, self._finished)
        # Logs are files log_<id>, as the legacy server writes them; like jobs they do not outlive the run.
        self.logs_dir = root / "logs"
        shutil.rmtree(self.logs_dir, ignore_errors=True)
        self.logs_dir.mkdir(parents=True)
        #: ``cache=true`` problems (legacy): id -> (file, content type).
        self.cache: dict[str, tuple[Path, str]] = {}
        self.cache_dir = root / "cache"
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self.cache_dir.mkdir(parents=True)

    @property
    def legacy(self) -> bool:
        return self.config.legacy

    def log_path(self, req_id: str) -> Path:
        return self.logs_dir / f"log_{req_id}"

    def count(self, name: str, amount: int = 1) -> None:
        self.stats.incr(API, name, amount)

    def _finished(self, job: Job) -> None:
        if job.state is State.ABORTED:
            self.count("requests_aborted")
            return
        outcome = job.outcome or {}
        self.count("requests_failed" if job.failed else "requests_solved")
        self.stats.incr_keyed(API, "results_by_status", str(outcome.get("status")))
        if outcome.get("kind"):
            self.stats.incr_keyed(API, "requests_by_kind", outcome["kind"])
        if outcome.get("file_answer"):
            self.count("result_files")

    def gauges(self) -> dict[str, Any]:
        return {
            "jobs_live": lambda: self.book.count(),
            "jobs_queued": lambda: self.book.count(State.QUEUED),
            "jobs_running": lambda: self.book.count(State.RUNNING),
            "solver_pids": self.book.solver_pids,
            "cached_problems": lambda: len(self.cache),
        }

    async def health(self, request: web.Request) -> web.Response:
        version = SERVER_VERSION if self.legacy else PROXY_FULL_VERSION
        return answer({"status": "RUNNING", "version": version}, JSON)

    async def shutdown(self, _app: web.Application) -> None:
        await self.book.shutdown()


def _fault_body(status: int, message: str) -> tuple[bytes, str]:
    """An injected fault's default answer on this site: cuOpt's error shape, exact JSON type."""
    return encode({"error": message, "error_result": False}, JSON), JSON


SERVER = web.AppKey("cuopt_server", CuOptServer)


def build_site_app(main: web.Application) -> web.Application:
    """The ``/cuopt`` application, sharing ``main``'s counters, request log and fault rules."""
    config = main[CONFIG].cuopt_server
    limit = config.max_request_bytes + _BODY_SLACK if not config.legacy else 2**62  # legacy: no cap
    # Faults sit inside the request log (which shows them); errors are rendered innermost, so faults
    # that handle the request first see the answer the client would have had.
    site = web.Application(
        middlewares=[record_requests, faults.inject_faults, render_errors], client_max_size=limit
    )
    server = CuOptServer(main)
    site[SERVER] = main[SERVER] = server
    for key in (CONFIG, STATS, REQUEST_LOG, STORE, faults.FAULTS):
        site[key] = main[key]
    site[FAULT_BODY] = _fault_body
    site.on_shutdown.append(server.shutdown)
    route = site.router.add_route
    bind = functools.partial
    for path in HEALTH_PATHS:
        route("GET", path, server.health)
    route("POST", "/cuopt/request", bind(submit.submit, server))
    route("GET", "/cuopt/request/{req_id}", bind(results.status, server))
    route("DELETE", "/cuopt/request/{req_id}", bind(results.abort, server))
    route("POST", "/cuopt/solution", bind(submit.upload_solution, server))
    route("GET", "/cuopt/solution/{req_id}", bind(results.solution, server))
    route("DELETE", "/cuopt/solution/{req_id}", bind(results.delete_solution, server))
    route("GET", "/cuopt/solution/{req_id}/incumbents", bind(results.incumbents, server))
    route("GET", "/cuopt/log/{req_id}", bind(results.log, server))
    route("DELETE", "/cuopt/log/{req_id}", bind(results.delete_log, server))
    return site


def setup(main: web.Application) -> None:
    """Declares the ``cuopt_server`` counters and adds the ``/cuopt`` site to the main app's sites
    (served when ``--cuopt-server-port`` is given)."""
    site = build_site_app(main)
    server = site[SERVER]
    main[STATS].declare(API, COUNTERS, KEYED_COUNTERS, gauges=server.gauges())
    config = main[CONFIG].cuopt_server
    main[SITES].append(Site("self-hosted cuOpt server", site, config.port, config.port_file))
