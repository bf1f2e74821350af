"""The middleware that records every request in the admin request log (``GET /_emulator/requests``).

Every site of the emulator (the main one and the self-hosted cuOpt server's own port) puts it
outermost, so the log shows each request with the status its client finally got — an injected
fault's included — whatever API answered it.
"""

from __future__ import annotations

import time

from aiohttp import hdrs, web

from optimization_emulator import faults
from optimization_emulator.app_keys import REQUEST_LOG
from optimization_emulator.signing import SIGNATURE_PARAM
from optimization_emulator.stats import RequestRecord


@web.middleware
async def record_requests(request: web.Request, handler) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[REQUEST_LOG].add(
            RequestRecord(
                method=request.method,
                route=faults.route_template(request),
                path=request.path,
                query={k: "<redacted>" if k == SIGNATURE_PARAM else v for k, v in request.query.items()},
                status=faults.logged_status(request, status),
                authorization=hdrs.AUTHORIZATION in request.headers,
                content_length=request.content_length,
                time=time.time(),
                fault=faults.fault_of(request),
            )
        )
