"""Blobs on disk under the data dir: uploads, run inputs, outputs and logs.

Payloads here go up to hundreds of megabytes, so bodies are written to disk chunk by chunk as they
arrive (never held whole in memory), become visible only when complete (written to a temporary name,
then renamed), and are served back with sendfile through aiohttp's ``FileResponse``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterable
from pathlib import Path

from aiohttp import web

#: Chunk size for reading request bodies.
CHUNK_BYTES = 1024 * 1024


class PayloadTooLarge(Exception):
    """A streamed body went over its limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"payload exceeds the limit of {limit:,} bytes")
        self.limit = limit


class BlobStore:
    """Files addressed by keys such as ``nextmv/runs/<run_id>/output.json`` below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file for ``key``; keys are made by the emulator, this only guards against mistakes."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"blob key {key!r} escapes the data dir")
        return path

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    async def write_stream(self, key: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        """Streams ``chunks`` into ``key``; raises :class:`PayloadTooLarge` past ``limit`` bytes."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        written = 0
        handle = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise PayloadTooLarge(limit)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.close)
            os.replace(partial, path)
        finally:
            handle.close()
            partial.unlink(missing_ok=True)
        return written


def file_response(path: Path, content_type: str) -> web.FileResponse:
    """``path`` sent with sendfile, as ``content_type`` (never a guessed Content-Encoding)."""
    return web.FileResponse(path, chunk_size=CHUNK_BYTES, headers={"Content-Type": content_type})
