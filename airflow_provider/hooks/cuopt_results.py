"""Retrieving and persisting a cuOpt result: the one implementation the worker and the trigger share.

NVCF hands a result out only once, so whoever receives it stores it at once: the sync hook calls
:class:`ResultRetriever` directly, the trigger calls :func:`store_result` through
``asyncio.to_thread`` (no blocking I/O on the event loop), so a damaged large-result zip is
downloaded again on either path. Large results arrive as a zip holding ``large_result``: it is
downloaded with a byte bound, read with guarded member selection, parsed as a stream (ijson) to
prove it is JSON and to read the solver status without loading it, and copied to ``output_uri`` in
the same pass. "NVCF answered 404: look in storage" is decided once, by :func:`gone_outcome`, and a
stored result is judged by what it says, so a retry never turns a failed solve into a success.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus, stored_event
from airflow_provider.exceptions import MalformedResponseError, ProtocolError
from airflow_provider.protocol.cuopt import LARGE_RESULT_MEMBERS, Invocation, gone_message
from airflow_provider.protocol.cuopt_results import (
    ResultSummary,
    StreamingSummary,
    solver_outcome,
    summarize_result,
)
from airflow_provider.utils import archives, uris
from airflow_provider.utils.http import Timeouts, TLSSettings
from airflow_provider.utils.presigned import PresignedTransfers, transfer_timeouts
from airflow_provider.utils.retry import RetryPolicy, restarting
from airflow_provider.utils.sync_http import SyncApi, WatchedSession

#: Largest result, uncompressed (the NVCF large-result bound).
MAX_RESULT_BYTES = 2 * 1024**3
#: Largest large-result zip download: the result plus zip overhead. Deflate's worst case adds about
#: 0.03 % (5 bytes per 16 KiB stored block) and the headers a few hundred bytes; 16 MiB covers
#: both with room, while still stopping an endless body just past the result bound.
MAX_RESULT_ZIP_BYTES = MAX_RESULT_BYTES + 16 * 1024 * 1024


@dataclass(frozen=True)
class StoredResult:
    """Where a result was stored, and whether the solver found a usable solution."""

    paths: list[str]
    ok: bool
    message: str


def result_target(output_uri: str, req_id: str) -> str:
    """``output_uri``, or ``<req_id>.json`` inside it for a folder URI (the id validated first)."""
    return uris.output_target(output_uri, req_id)


def store_inline_result(response: Any, output_uri: str, req_id: str) -> StoredResult:
    """Write an inline result (a parsed dict) and judge it."""
    target = result_target(output_uri, req_id)
    data = json.dumps(response, separators=(",", ":")).encode("utf-8")
    with uris.atomic_output(target) as out:
        out.write(data)
    ok, message = solver_outcome(summarize_result(response))
    return StoredResult([uris.normalized(target)], ok, message)


def store_zip_result(
    zip_path: Path, output_uri: str, req_id: str, *, max_bytes: int = MAX_RESULT_BYTES
) -> StoredResult:
    """Extract ``large_result`` from a downloaded result zip to ``output_uri``, checking it is JSON."""
    target = result_target(output_uri, req_id)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise MalformedResponseError(
            f"NVCF large result for request {req_id} is not a valid zip: {exc}"
        ) from exc
    builder = StreamingSummary()
    parser = ijson.parse_coro(builder)
    with archive:
        name, member = archives.open_zip_member(archive, LARGE_RESULT_MEMBERS, max_total_bytes=max_bytes)
        try:
            with member:
                archives.copy_bounded(
                    archives.read_chunks(member),
                    target,
                    max_total_bytes=max_bytes,
                    on_chunk=parser.send,
                    on_end=parser.close,
                )
        except ijson.JSONError as exc:
            raise ProtocolError(
                f"NVCF large result {name!r} of request {req_id} is not valid JSON: {exc}"
            ) from exc
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # truncated or corrupted download
            raise MalformedResponseError(
                f"NVCF large result zip of request {req_id} is damaged: {exc}"
            ) from exc
    ok, message = solver_outcome(builder.summary)
    return StoredResult([uris.normalized(target)], ok, message)


def already_stored(output_uri: str, req_id: str) -> StoredResult | None:
    """The result of ``req_id`` that an earlier task (or try) stored at ``output_uri``, judged again
    from the file itself (streamed), or None when there is none.

    NVCF answers 404 once a result was handed out; the task that received it stored it first, so a
    sensor or a retried task can pick it up here — as the success or the failure it was.
    """
    target = result_target(output_uri, req_id)
    if uris.is_local(target) and not uris.local_path(target).is_file():
        return None
    try:
        summary = read_summary(target)
    except ijson.JSONError as exc:
        return StoredResult([uris.normalized(target)], False, f"the stored result is not valid JSON: {exc}")
    except Exception:  # each transport has its own "not found"
        return None
    ok, message = solver_outcome(summary)
    return StoredResult([uris.normalized(target)], ok, message)


#: Most bytes of a stored result read back for its summary (the solver status comes first; a
#: larger result's summary may lack what follows, e.g. the notes of a 2 GiB batch).
MAX_SUMMARY_READ_BYTES = 512 * 1024 * 1024


def read_summary(path: str, *, max_bytes: int | None = None) -> ResultSummary:
    """Stream a stored result (any URI) through :class:`StreamingSummary`; memory stays bounded and
    at most ``max_bytes`` are read (None: the whole file). Raises ``ijson.JSONError`` for a file
    that is not JSON, and the transport's own error when it cannot be read."""
    builder = StreamingSummary()
    parser = ijson.parse_coro(builder)
    read = 0
    with uris.open_for_read(path) as f:
        for chunk in archives.read_chunks(f):
            parser.send(chunk)
            read += len(chunk)
            if max_bytes is not None and read >= max_bytes:
                return builder.summary
    parser.close()
    return builder.summary


def gone_outcome(req_id: str, asset_id: str | None, output_uri: str) -> CuOptSolveEvent:
    """The one "NVCF said 404" policy: a result stored by whoever received it ends the wait as what it
    says; otherwise the request failed, saying that the result was handed out once (or expired)."""
    stored = already_stored(output_uri, req_id)
    if stored is not None:
        return stored_event(req_id, asset_id, stored)
    return CuOptSolveEvent(SolveEventStatus.FAILED, req_id, asset_id, (), gone_message(req_id))


class ResultRetriever:
    """Stores a fulfilled request's result: inline, or the large-result zip downloaded (without
    credentials, bounded, again if it arrived damaged) then extracted. Needs nothing from a hook."""

    def __init__(self, transfers: PresignedTransfers, logger: logging.Logger | Any) -> None:
        self.transfers = transfers
        self.log = logger

    def store(
        self, invocation: Invocation, output_uri: str, *, deadline: float | None = None
    ) -> StoredResult:
        """Persist ``invocation``'s result at ``output_uri``; returns where and what it says."""
        req_id = invocation.req_id
        if invocation.response_reference is None:
            stored = store_inline_result(invocation.response, output_uri, req_id)
        else:
            url = invocation.response_reference

            def attempt(_: int) -> StoredResult:
                with tempfile.TemporaryDirectory(prefix="cuopt-result-") as tmp:
                    path = Path(tmp) / "result.zip"
                    self.transfers.get(
                        url,
                        lambda chunks: archives.copy_bounded(
                            chunks, str(path), max_total_bytes=MAX_RESULT_ZIP_BYTES
                        ),
                        what="download large result",
                        deadline=deadline,
                    )
                    return store_zip_result(path, output_uri, req_id)

            # a zip damaged in transit is downloaded again: the URL stays valid for 24 h
            stored = restarting(f"NVCF large result of request {req_id}", attempt, logger=self.log)
        self.log.info("Stored the result of cuOpt request %s at %s", req_id, ", ".join(stored.paths))
        return stored


def store_result(
    tls: TLSSettings,
    timeouts: Timeouts,
    policy: RetryPolicy,
    logger: logging.Logger | Any,
    invocation: Invocation,
    output_uri: str,
    deadline: float | None = None,
) -> StoredResult:
    """:meth:`ResultRetriever.store` with a session of its own: what the trigger runs in a thread."""
    session = WatchedSession(tls)
    try:
        api = SyncApi("NVCF", session, policy, transfer_timeouts(timeouts.connect), logger)
        return ResultRetriever(PresignedTransfers(api), logger).store(
            invocation, output_uri, deadline=deadline
        )
    finally:
        session.close()
