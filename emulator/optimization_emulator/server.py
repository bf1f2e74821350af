"""The emulator's HTTP server: app factory, shared middleware, admin endpoints and the serve loop.

The core knows nothing about Nextmv or NVCF itself. It owns what every emulated API shares — API-key
auth, JSON error bodies, the request log and counters, presigned URLs and blob storage — and each API
module (``nextmv_api``, ``nvcf_api``) registers its routes and counters on the same application.
NVCF checks its own credentials (API keys or access tokens, with problem+json errors) per route.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
import signal
import ssl
import tempfile
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

from optimization_emulator import cuopt_server_api, fault_admin, faults, nextmv_api, nvcf_api, presigned
from optimization_emulator.app_keys import (
    CONFIG,
    PROTECTED_PREFIXES,
    REQUEST_LOG,
    SIGNER,
    SITES,
    STATS,
    STORE,
)
from optimization_emulator.config import EmulatorConfig
from optimization_emulator.errors import api_error, as_json_error
from optimization_emulator.fault_rules import FaultBook
from optimization_emulator.recording import record_requests
from optimization_emulator.signing import UrlSigner
from optimization_emulator.stats import RequestLog, Stats
from optimization_emulator.storage import BlobStore

logger = logging.getLogger("optimization_emulator")
ADMIN_PREFIX = faults.ADMIN_PREFIX
HEALTH_PATH = "/_emulator/health"
#: Slack above the inline-input limit for the rest of a POST /runs body (options, configuration).
_BODY_SLACK_BYTES = 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 5.0
#: The emulated APIs; each ``setup(app)`` registers its routes, counters and auth prefixes (or, like
#: the self-hosted cuOpt server, a site of its own in ``app[SITES]``).
API_SETUPS = (nextmv_api.setup, nvcf_api.setup, cuopt_server_api.setup)


class AccessLogger(AbstractAccessLogger):
    """One line per request with the path only: query strings may carry presigned signatures."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, seconds: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            seconds,
        )


@web.middleware
async def render_json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Turns every error into a JSON body (aiohttp's own, like unmatched routes, come as text)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        raise as_json_error(exc) from None
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, request.path)
        raise api_error(web.HTTPInternalServerError, "internal emulator error (see its log)") from None


@web.middleware
async def require_api_key(request: web.Request, handler) -> web.StreamResponse:
    """``Authorization: Bearer <key>`` with one of the configured keys, on protected paths."""
    path = request.path
    if path != HEALTH_PATH and any(path.startswith(p) for p in request.app[PROTECTED_PREFIXES]):
        scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise api_error(web.HTTPUnauthorized, "missing API key: send 'Authorization: Bearer <api key>'")
        if not any(hmac.compare_digest(token.encode(), key.encode()) for key in request.app[CONFIG].api_keys):
            raise api_error(web.HTTPUnauthorized, "invalid API key")
    return await handler(request)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].snapshot())


async def _requests(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise api_error(web.HTTPBadRequest, "limit must be an integer") from None
    return web.json_response(request.app[REQUEST_LOG].recent(limit))


async def _reset(request: web.Request) -> web.Response:
    request.app[STATS].reset()
    request.app[REQUEST_LOG].clear()
    request.app[faults.FAULTS].clear()
    return web.json_response({"status": "reset"})


def build_app(config: EmulatorConfig) -> web.Application:
    """The whole emulator as an aiohttp application.

    Without ``config.data_dir`` it keeps its files in a temp dir that is removed on cleanup.
    Presigned URLs need ``config.public_url``, or :func:`set_public_url` once the port is known.
    """
    app = web.Application(
        # Faults sit inside the request log (which shows them) and outside auth (a 503 needs no key).
        middlewares=[record_requests, render_json_errors, faults.inject_faults, require_api_key],
        client_max_size=config.limits.inline_bytes + _BODY_SLACK_BYTES,
    )
    if config.data_dir is not None:
        root = Path(config.data_dir)
    else:
        root = Path(tempfile.mkdtemp(prefix="nextmv-emulator-"))
        app.on_cleanup.append(lambda _app: asyncio.to_thread(shutil.rmtree, root, True))
    app[CONFIG] = config
    app[STORE] = BlobStore(root)
    app[SIGNER] = UrlSigner(config.presign_ttl)
    if config.public_url:
        app[SIGNER].public_url = URL(config.public_url)
    app[STATS] = Stats()
    app[REQUEST_LOG] = RequestLog()
    app[PROTECTED_PREFIXES] = [ADMIN_PREFIX]
    app[SITES] = []
    app[faults.FAULTS] = FaultBook()  # before the APIs: sites of their own share the rules
    app.router.add_get(HEALTH_PATH, _health)
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_get("/_emulator/requests", _requests)
    app.router.add_post("/_emulator/reset", _reset)
    presigned.setup(app)
    for setup_api in API_SETUPS:
        setup_api(app)
    fault_admin.setup(app)
    return app


def set_public_url(app: web.Application, host: str, port: int, scheme: str = "http") -> None:
    """Defaults the base of presigned URLs to ``scheme://host:port`` (loopback for wildcard hosts)."""
    if app[SIGNER].public_url is None:
        reachable = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        app[SIGNER].public_url = URL.build(scheme=scheme, host=reachable, port=port)


def _ssl_context(config: EmulatorConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context


def _runner(app: web.Application) -> web.AppRunner:
    # In-flight requests (a big upload, say) get a few seconds, not aiohttp's default minute.
    return web.AppRunner(
        app, access_log_class=AccessLogger, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
    )


async def _start(runner: web.AppRunner, config: EmulatorConfig, port: int, port_file: Path | None) -> int:
    """Serves ``runner`` on ``port`` (0: a free one); returns the bound port, written to ``port_file``."""
    await runner.setup()
    site = web.TCPSite(runner, config.host, port, ssl_context=_ssl_context(config))
    await site.start()
    bound = runner.addresses[0][1]
    if port_file:
        _write_atomically(Path(port_file), str(bound))
    return bound


async def serve(config: EmulatorConfig) -> None:
    """Serves until SIGINT or SIGTERM, then stops runs, closes connections and cleans up.

    The main site comes up first; sites of their own (``app[SITES]`` with a port) after it, and they
    are stopped before it (its cleanup removes the temporary data dir they use)."""
    app = build_app(config)
    runner = _runner(app)
    extra: list[web.AppRunner] = []
    try:
        port = await _start(runner, config, config.port, None)
        set_public_url(app, config.host, port, config.scheme)
        for site in app[SITES]:
            if site.port is None:
                continue
            extra.append(_runner(site.app))
            bound = await _start(extra[-1], config, site.port, site.port_file)
            url = URL.build(scheme=config.scheme, host=config.host, port=bound)
            print(f"{site.name} listening on {url}", flush=True)
        if config.port_file:  # last: launchers wait for it, and every site is up by then
            _write_atomically(Path(config.port_file), str(port))
        logger.info("data dir: %s", app[STORE].root)
        print(
            f"emulator listening on {URL.build(scheme=config.scheme, host=config.host, port=port)}",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logger.info("shutting down")
    finally:
        for each in reversed(extra):
            await each.cleanup()
        await runner.cleanup()


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def run(config: EmulatorConfig) -> int:
    """Runs the emulator in the foreground; returns the process exit status."""
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        logger.error("cannot start the emulator: %s", exc)
        return 1
    return 0
