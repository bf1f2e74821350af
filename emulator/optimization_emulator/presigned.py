"""The emulator's stand-in for an object store: presigned PUT uploads and presigned GET downloads.

Nextmv (and NVCF) hand out presigned S3 URLs for large payloads. Here they point back at the
emulator under ``/_presigned/{api}/...`` and behave like S3 where clients can tell: no API key, the
signature in the query string, 403 when it is wrong or expired, 400 when an Authorization header is
sent as well, a size limit enforced before anything is stored, and an empty 200 on success.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from aiohttp import hdrs, web

from optimization_emulator.app_keys import CONFIG, SIGNER, STATS, STORE
from optimization_emulator.errors import api_error, too_large
from optimization_emulator.storage import CHUNK_BYTES, PayloadTooLarge, file_response

PREFIX = "/_presigned"
UPLOAD_ROUTE = PREFIX + "/{api}/uploads/{upload_id}"


def upload_key(api: str, upload_id: str) -> str:
    """Where the bytes PUT for ``upload_id`` are stored."""
    return f"{api}/uploads/{upload_id}"


def new_upload(app: web.Application, api: str) -> tuple[str, str]:
    """A fresh ``(upload_id, presigned PUT URL)`` pair for ``api``."""
    upload_id = str(uuid.uuid4())
    return upload_id, app[SIGNER].sign("PUT", f"{PREFIX}/{api}/uploads/{upload_id}")


def download_url(app: web.Application, path: str, *, ttl: float | None = None) -> str:
    """A presigned GET URL for the emulator ``path`` (which must start with ``/_presigned/``),
    valid for ``ttl`` seconds (default: ``--presign-ttl``)."""
    if not path.startswith(PREFIX + "/"):
        raise ValueError(f"{path!r} is not a presigned path")
    return app[SIGNER].sign("GET", path, ttl=ttl)


async def handle_upload(request: web.Request) -> web.Response:
    """PUT to a presigned upload URL: checked, streamed to disk, counted."""
    app = request.app
    app[SIGNER].verify(request)
    api, upload_id = request.match_info["api"], request.match_info["upload_id"]
    await receive_upload(request, api, upload_key(api, upload_id), app[CONFIG].limits.upload_bytes)
    return web.Response(status=200)


async def receive_upload(request: web.Request, api: str, key: str, limit: int) -> int:
    """Streams a verified presigned PUT's body into blob ``key`` (at most ``limit`` bytes) and counts
    it as one of ``api``'s uploads; returns the size. For API-specific upload routes as well."""
    app = request.app
    message = f"EntityTooLarge: an upload may be at most {limit:,} bytes"
    if request.content_length is not None and request.content_length > limit:
        raise too_large(message, limit, request.content_length)  # before reading a byte of the body
    try:
        size = await app[STORE].write_stream(key, request.content.iter_chunked(CHUNK_BYTES), limit)
    except PayloadTooLarge:
        raise too_large(message, limit, None) from None
    app[STATS].incr(api, "uploads")
    app[STATS].incr(api, "upload_bytes", size)
    return size


def send_download(request: web.Request, api: str, path: Path | None, content_type: str) -> web.StreamResponse:
    """Answers a presigned GET with the file at ``path`` once the signature checks out."""
    request.app[SIGNER].verify(request)
    if path is None or not path.is_file():
        raise api_error(web.HTTPNotFound, "the object behind this URL no longer exists")
    request.app[STATS].incr(api, "downloads")
    return file_response(path, content_type)


def setup(app: web.Application) -> None:
    """Registers the upload route shared by every emulated API."""
    app.router.add_route(hdrs.METH_PUT, UPLOAD_ROUTE, handle_upload)
