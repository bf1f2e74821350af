"""JSON error responses: every error the emulator sends has the body ``{"error": "<message>"}``.

The official SDKs never parse error bodies (they put the raw text into the exception), so the exact
shape Nextmv uses is unknown; a JSON object with a readable ``error`` is what clients log best.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def api_error(status: type[web.HTTPException], message: str, **init_args: Any) -> web.HTTPException:
    """An exception to raise from a handler: ``status`` with ``{"error": message}``.

    ``init_args`` are what some statuses require (``max_size``/``actual_size`` for 413).
    """
    return status(text=json.dumps({"error": message}), content_type="application/json", **init_args)


def too_large(message: str, limit: int, size: int | None) -> web.HTTPException:
    """413 with ``{"error": message}``."""
    return api_error(web.HTTPRequestEntityTooLarge, message, max_size=limit, actual_size=size or 0)


def as_json_error(exc: web.HTTPException) -> web.HTTPException:
    """``exc`` with a JSON body (aiohttp's own errors, like unmatched routes, come as text)."""
    if exc.content_type != "application/json" and not exc.empty_body and exc.status >= 400:
        text = exc.text or ""
        message = exc.reason if not text or text.startswith(f"{exc.status}:") else text
        exc.text = json.dumps({"error": message})
        exc.content_type = "application/json"
    return exc
