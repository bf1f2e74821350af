"""Storing a self-hosted cuOpt server's result at ``output_uri``: the one implementation the worker
and the trigger share (the trigger runs it through ``asyncio.to_thread``: no blocking I/O on the loop).

The server keeps a result until it is deleted (unlike NVCF), so a result is fetched again whenever
that is simpler: a poll reads at most ``POLL_ANSWER_CAP`` bytes, and a larger finished answer is
requested once more and *streamed* to storage (constant memory, bounded in bytes and time, parsed
on the way by ijson to judge it without loading it; a transfer broken mid-way starts again).
A ``result_file`` answer is read from the connection's ``result_dir`` (the local mount of the
server's ``CUOPT_RESULT_DIR``). Success is judged by what the result says, as for NVCF
(``protocol/cuopt_results.py``), plus the ``validation_only`` answer ("Input is valid").
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from airflow_provider.exceptions import ProtocolError
from airflow_provider.hooks.cuopt_results import StoredResult, result_target
from airflow_provider.protocol import cuopt_server as proto
from airflow_provider.protocol.cuopt_results import (
    ResultSummary,
    StreamingSummary,
    solver_outcome,
    summarize_result,
)
from airflow_provider.utils import archives, uris
from airflow_provider.utils.http import USER_AGENT, Timeouts
from airflow_provider.utils.presigned import transfer_timeouts, transfer_total
from airflow_provider.utils.retry import RetryPolicy, restarting
from airflow_provider.utils.sync_http import STREAM_ERRORS, SyncApi, WatchedSession, transport_error


def judged(summary: ResultSummary) -> tuple[bool, str]:
    """(ok, message) of a server result: the shared solver rules, or a validation-only "valid"."""
    if summary.has_response and proto.validated_only(summary.notes, bool(summary.answers)):
        return True, "input is valid (validation only)"
    return solver_outcome(summary)


def _stored(target: str, summary: ResultSummary) -> StoredResult:
    ok, message = judged(summary)
    return StoredResult([uris.normalized(target)], ok, message)


def store_payload(payload: Any, output_uri: str, req_id: str) -> StoredResult:
    """Write a result that was read whole (compact JSON) and judge it."""
    target = result_target(output_uri, req_id)
    with uris.atomic_output(target) as out:
        out.write(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    return _stored(target, summarize_result(payload))


def _copy_json(chunks: Iterator[bytes], output_uri: str, req_id: str, what: str) -> StoredResult:
    """Stream JSON ``chunks`` to the result's target, bounded, judging it on the way."""
    target = result_target(output_uri, req_id)
    builder = StreamingSummary()
    parser = ijson.parse_coro(builder)
    try:
        archives.copy_bounded(
            chunks,
            target,
            max_total_bytes=proto.MAX_RESULT_BYTES,
            on_chunk=parser.send,
            on_end=parser.close,
        )
    except ijson.JSONError as exc:
        raise ProtocolError(f"{what} of cuOpt server request {req_id} is not valid JSON: {exc}") from exc
    return _stored(target, builder.summary)


def _inflated(chunks: Iterator[bytes], cap: int) -> Iterator[bytes]:
    """zlib-decompress a stream, never producing more than ``cap`` bytes (a small file can expand)."""
    inflater = zlib.decompressobj()
    produced = 0
    for chunk in chunks:
        data = inflater.decompress(chunk, cap + 1 - produced)
        while True:
            produced += len(data)
            if produced > cap:
                raise ProtocolError(f"a zlib result expands past {cap:,} bytes; refused")
            if data:
                yield data
            if not inflater.unconsumed_tail:
                break
            data = inflater.decompress(inflater.unconsumed_tail, cap + 1 - produced)
    yield inflater.flush()


def store_result_file(path: Path, fmt: str, output_uri: str, req_id: str) -> StoredResult:
    """Copy a result file the server wrote into its result directory (json or zlib) to ``output_uri``."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ProtocolError(
            f"The cuOpt server wrote request {req_id}'s result to {path.name!r}, which cannot be read "
            f"from result_dir ({exc}). Check that the connection's result_dir is the mount of the "
            "server's CUOPT_RESULT_DIR on this machine."
        ) from exc
    with f:
        chunks = archives.read_chunks(f)
        if fmt == "zlib":
            chunks = _inflated(chunks, proto.MAX_RESULT_BYTES)
        return _copy_json(chunks, output_uri, req_id, f"result file {path.name!r}")


class ServerResults:
    """Stores a finished poll's result; needs only an API path (composed, never calls back a hook)."""

    def __init__(
        self, api: SyncApi, settings: proto.CuOptServerSettings, logger: logging.Logger | Any
    ) -> None:
        self.api = api
        self.settings = settings
        self.log = logger

    def store(
        self, answer: proto.SolutionAnswer, output_uri: str, *, deadline: float | None = None
    ) -> StoredResult:
        """Persist a DONE, LARGE or RESULT_FILE answer at ``output_uri``; returns where and what it says."""
        req_id = answer.req_id
        if answer.status is proto.SolutionState.DONE:
            stored = store_payload(answer.payload, output_uri, req_id)
        elif answer.status is proto.SolutionState.RESULT_FILE:
            path, fmt = proto.result_file_path(answer.payload, self.settings.result_dir)
            stored = store_result_file(path, fmt, output_uri, req_id)
        elif answer.status is proto.SolutionState.LARGE:
            stored = restarting(
                f"cuOpt server result of request {req_id}",
                lambda _: self._stream(req_id, output_uri, deadline),
                logger=self.log,
            )
        else:  # pragma: no cover - callers store finished answers only
            raise ValueError(f"nothing to store for a {answer.status.value} answer")
        self.log.info("Stored the result of cuOpt server request %s at %s", req_id, ", ".join(stored.paths))
        return stored

    def _stream(self, req_id: str, output_uri: str, deadline: float | None) -> StoredResult:
        url = self.settings.url(proto.solution_path(req_id))
        what = "download result"
        with self.api.stream(url, what=what, total=transfer_total(deadline)) as response:
            kind = proto.media_type(response.headers)
            chunks = response.iter_content(1024 * 1024)
            if kind == proto.ZLIB:
                chunks = _inflated(chunks, proto.MAX_RESULT_BYTES)
            elif kind != proto.JSON:
                proto.decode_answer(response.status_code, response.headers, b"?")  # raises, undecoded
            try:
                return _copy_json(chunks, output_uri, req_id, "the result")
            except STREAM_ERRORS as exc:  # broken mid-way: restarted (the server keeps the result)
                raise transport_error(proto.SERVICE, what, exc) from exc


def store_answer(
    settings: proto.CuOptServerSettings,
    timeouts: Timeouts,
    policy: RetryPolicy,
    logger: logging.Logger | Any,
    answer: proto.SolutionAnswer,
    output_uri: str,
    deadline: float | None = None,
) -> StoredResult:
    """:meth:`ServerResults.store` with a session of its own: what the trigger runs in a thread."""
    session = WatchedSession(settings.tls)
    session.headers.update({"User-Agent": USER_AGENT, **settings.headers()})
    try:
        api = SyncApi(proto.SERVICE, session, policy, transfer_timeouts(timeouts.connect), logger)
        return ServerResults(api, settings, logger).store(answer, output_uri, deadline=deadline)
    finally:
        session.close()
