"""Asynchronous hook for a self-hosted cuOpt server (aiohttp), for the triggerer.

Polls ``GET /cuopt/solution/{id}`` and aborts a job, with the same protocol functions, Content-Type
checks, byte caps and total time bound per call as
:class:`~airflow_provider.hooks.cuopt_server.CuOptServerHook`; its wait makes the same decisions in
the same order as the sync hook's. Storing a result is done by the one shared implementation,
``hooks/cuopt_server_results.store_answer``, in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider.events.cuopt import CuOptSolveEvent
from airflow_provider.exceptions import ResponseTooLargeError
from airflow_provider.hooks.base_async import AsyncServiceHook
from airflow_provider.hooks.cuopt_server import FIRST_POLL_SECONDS, answer_event, gone_event, timeout_event
from airflow_provider.hooks.cuopt_server_results import store_answer
from airflow_provider.protocol import cuopt_server as proto
from airflow_provider.utils.http import USER_AGENT, Answer
from airflow_provider.utils.polling import poll_delay
from airflow_provider.utils.redact import mask_secrets


class CuOptServerAsyncHook(AsyncServiceHook):
    """Use as ``async with CuOptServerAsyncHook(conn_id) as hook: await hook.poll(req_id)``."""

    service = proto.SERVICE
    #: Polls are short (the server never long-polls): a bounded pool per loop is plenty.
    max_in_flight = 32

    def __init__(self, cuopt_conn_id: str = "cuopt_server_default", **kwargs: Any) -> None:
        super().__init__(cuopt_conn_id, **kwargs)
        self.cuopt_conn_id = cuopt_conn_id

    async def _load(self) -> proto.CuOptServerSettings:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.conn_id)
        extras = await get_async_extra_dejson(conn)
        settings = proto.CuOptServerSettings.from_connection(
            conn.host, conn.port, conn.schema, conn.password, extras
        )
        mask_secrets(settings.auth_value)
        return settings

    def session_headers(self, settings: Any) -> Mapping[str, str]:
        return {"User-Agent": USER_AGENT, **settings.headers()}

    async def _call(self, method: str, path: str, *, what: str, deadline: float | None = None) -> Answer:
        return await self.call_api(
            method,
            path,
            what=what,
            decode=functools.partial(proto.decode_answer, cap=proto.POLL_ANSWER_CAP),
            accept=proto.is_outcome,
            cap=proto.POLL_ANSWER_CAP,
            deadline=deadline,
        )

    async def poll(self, req_id: str, *, deadline: float | None = None) -> proto.SolutionAnswer:
        """The sync hook's ``poll``; GONE is returned (not raised) for the wait to decide."""
        try:
            answer = await self._call(
                "GET", proto.solution_path(req_id), what="poll solution", deadline=deadline
            )
        except ResponseTooLargeError:
            return proto.SolutionAnswer(proto.SolutionState.LARGE, req_id)
        return proto.interpret_solution(req_id, answer.status, answer.payload)

    async def cancel(self, req_id: str) -> None:
        """``DELETE /cuopt/request/{id}`` without flags."""
        await self._call("DELETE", proto.request_path(req_id), what="abort request")

    async def wait_for_result(
        self, req_id: str, output_uri: str, *, end_time: float, poll_seconds: int, slack: float
    ) -> CuOptSolveEvent:
        """``CuOptServerHook.wait_for_result`` on the event loop; storage runs in a worker thread."""
        attempt = 0
        while True:
            if time.time() >= end_time:
                return timeout_event(req_id)
            answer = await self.poll(req_id, deadline=end_time)
            if answer.status is proto.SolutionState.GONE:
                return await asyncio.to_thread(gone_event, req_id, output_uri)
            if answer.status is proto.SolutionState.FAILED:
                return answer_event(answer)
            if not answer.pending:
                stored = await asyncio.to_thread(
                    store_answer,
                    await self.settings(),
                    self.timeouts,
                    self.retry_policy,
                    self.log,
                    answer,
                    output_uri,
                    end_time + slack,
                )
                return answer_event(answer, stored)
            pause = poll_delay(attempt, FIRST_POLL_SECONDS, max(FIRST_POLL_SECONDS, float(poll_seconds)))
            attempt += 1
            await asyncio.sleep(min(pause, max(0.0, end_time - time.time())))
