"""Persisting a cuOpt result the moment it arrives (NVCF hands a result out only once).

Plain synchronous functions, used as they are by the sync hook and through ``asyncio.to_thread``
by the trigger, so both store results the same way. Large results arrive as a zip holding
``large_result``: it is read from a temporary file with guarded member selection and a byte
bound, parsed as a stream (ijson) to prove it is JSON and to read the solver status without
loading it, and copied to ``output_uri`` in the same pass.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from airflow_provider.exceptions import MalformedResponseError, ProtocolError, UnsafeArchiveError
from airflow_provider.protocol.cuopt import LARGE_RESULT_MEMBERS
from airflow_provider.protocol.cuopt_results import ResultSummary, solver_outcome, summarize_result
from airflow_provider.utils import archives, uris

MAX_RESULT_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class StoredResult:
    paths: list[str]
    ok: bool
    message: str


def result_target(output_uri: str, req_id: str) -> str:
    """A folder URI (trailing ``/`` or an existing local dir) gets ``<req_id>.json`` inside."""
    return uris.join(output_uri, f"{req_id}.json") if uris.is_folder_uri(output_uri) else output_uri


def store_inline_result(response: Any, output_uri: str, req_id: str) -> StoredResult:
    target = result_target(output_uri, req_id)
    data = json.dumps(response, separators=(",", ":")).encode("utf-8")
    with uris.atomic_output(target) as out:
        out.write(data)
    ok, message = solver_outcome(summarize_result(response))
    return StoredResult([uris.normalized(target)], ok, message)


class _SummaryBuilder:
    """ijson event sink that keeps only the fields :class:`ResultSummary` needs."""

    def __init__(self) -> None:
        self.summary = ResultSummary()
        self._answer: list[Any] | None = None

    def send(self, event: tuple[str, str, Any]) -> None:
        prefix, kind, value = event
        s = self.summary
        if prefix == "response" and kind == "start_map":
            s.has_response = True
        elif prefix == "response" and kind == "map_key" and value == "solver_infeasible_response":
            s.infeasible = True
        elif prefix in ("response.solver_response", "response.solver_response.item") and kind == "start_map":
            self._answer = [None, False]
        elif (
            self._answer is not None
            and kind == "map_key"
            and prefix
            in (
                "response.solver_response",
                "response.solver_response.item",
            )
            and value in ("solution", "vehicle_data", "num_vehicles")
        ):
            self._answer[1] = True
        elif (
            prefix in ("response.solver_response.status", "response.solver_response.item.status")
            and self._answer
        ):
            self._answer[0] = int(value) if kind == "number" and float(value).is_integer() else value
        elif prefix in ("response.solver_response", "response.solver_response.item") and kind == "end_map":
            if self._answer is not None:
                s.answers.append((self._answer[0], self._answer[1]))
            self._answer = None
        elif prefix == "notes.item" and kind == "string" and len(s.notes) < 20:
            s.notes.append(value)
        elif prefix == "error" and kind == "string":
            s.error = value


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
    builder = _SummaryBuilder()
    parser = ijson.parse_coro(builder)
    with archive:
        name, member = archives.open_zip_member(archive, LARGE_RESULT_MEMBERS, max_total_bytes=max_bytes)
        written = 0
        try:
            with member, uris.atomic_output(target) as out:
                while chunk := member.read(uris.CHUNK_SIZE):
                    written += len(chunk)
                    if written > max_bytes:
                        raise UnsafeArchiveError(
                            f"large result of request {req_id} expands past {max_bytes} bytes"
                        )
                    parser.send(chunk)
                    out.write(chunk)
                parser.close()
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


def already_stored(output_uri: str, req_id: str) -> list[str] | None:
    """The stored result of ``req_id`` at ``output_uri``, if a previous task (or try) already wrote it.

    NVCF answers 404 once a result was handed out; when that result was persisted by the task
    that received it (for example the submitting operator, if NVCF answered at once), a sensor
    or a retried task can pick it up from storage instead of failing.
    """
    target = result_target(output_uri, req_id)
    if uris.is_local(target):
        return [uris.normalized(target)] if uris.local_path(target).is_file() else None
    try:
        with uris.open_for_read(target) as f:
            f.read(1)
    except Exception:  # each transport has its own "not found"
        return None
    return [target]
