"""JSON error responses: ``{"error": "<message>"}``, or RFC 7807 problem+json for NVCF.

The official Nextmv SDKs never parse error bodies (they put the raw text into the exception), so the
exact shape Nextmv uses is unknown; a JSON object with a readable ``error`` is what clients log best.
NVCF answers platform errors as ``application/problem+json`` (``type``, ``title``, ``status``,
``detail``), and the cuOpt thin client reads ``detail`` from them; :func:`problem` makes those.
"""

from __future__ import annotations

import json
from http import HTTPStatus
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


PROBLEM_JSON = "application/problem+json"


def problem(
    status: type[web.HTTPException],
    detail: str,
    *,
    title: str | None = None,
    init_args: dict[str, Any] | None = None,
    **fields: Any,
) -> web.HTTPException:
    """An RFC 7807 problem (``application/problem+json``) to raise from an NVCF handler.

    ``fields`` are extra members of the problem object; ``init_args`` as for :func:`api_error`.
    """
    title = title or HTTPStatus(status.status_code).phrase
    body = {
        "type": "urn:nvcf-emulator:problem-details:" + "-".join(title.lower().split()),
        "title": title,
        "status": status.status_code,
        "detail": detail,
        **fields,
    }
    return status(text=json.dumps(body), content_type=PROBLEM_JSON, **(init_args or {}))


def as_json_error(exc: web.HTTPException) -> web.HTTPException:
    """``exc`` with a JSON body (aiohttp's own errors, like unmatched routes, come as text);
    JSON bodies (including problem+json) are left as they are."""
    if "json" not in (exc.content_type or "") and not exc.empty_body and exc.status >= 400:
        text = exc.text or ""
        message = exc.reason if not text or text.startswith(f"{exc.status}:") else text
        exc.text = json.dumps({"error": message})
        exc.content_type = "application/json"
    return exc
