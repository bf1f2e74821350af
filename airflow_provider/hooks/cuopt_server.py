"""Synchronous hook for a self-hosted NVIDIA cuOpt server (``cuopt_server``), used on workers.

It offers the operations ``CuOptSolveOperator`` and ``CuOptSolveSensor`` call on the NVCF hook
(``submit``, ``poll``, ``outcome_event``, ``wait_for_result``, ``gone_outcome``, ``finish``), with
the same meanings, so those classes drive either backend unchanged; ``hooks/cuopt_backends.py``
picks the hook by connection type. Protocol decisions are in
:mod:`airflow_provider.protocol.cuopt_server`, result storage in ``hooks/cuopt_server_results.py``
(shared with the trigger). The server has no authentication of its own: a gateway header, if the
connection names one, goes on every call and is masked.
"""

from __future__ import annotations

import functools
import time
from functools import cached_property
from typing import Any

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus, stored_event
from airflow_provider.events.summary import Publish
from airflow_provider.exceptions import (
    AmbiguousSubmissionError,
    MalformedResponseError,
    ProtocolError,
    RequestGoneError,
    ResponseTooLargeError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks.base import ServiceHook
from airflow_provider.hooks.cuopt_outcome import finish_solve
from airflow_provider.hooks.cuopt_problems import PreparedProblem
from airflow_provider.hooks.cuopt_results import already_stored
from airflow_provider.hooks.cuopt_server_results import ServerResults
from airflow_provider.protocol import cuopt_server as proto
from airflow_provider.protocol.outcomes import DEFAULT_REMOTE_LOG_MAX_BYTES
from airflow_provider.utils.http import TRANSFER_READ_TIMEOUT, Answer
from airflow_provider.utils.payloads import FileBody
from airflow_provider.utils.polling import poll_delay
from airflow_provider.utils.redact import mask_secrets, redact_text
from airflow_provider.utils.retry import TRANSFER_ATTEMPTS, is_ambiguous, short_error

SERVICE = proto.SERVICE
#: ``service`` of this backend's ``solution_summary`` (docs/outcomes.md).
SUMMARY_SERVICE = "cuopt-self-hosted"
#: A job the server ended in error: cuOpt refused the problem (see :func:`answer_event`).
PROBLEM_REFUSED = 422
#: Fastest poll of a job (the server never long-polls); backoff grows to ``poll_seconds``.
FIRST_POLL_SECONDS = 1.0


def timeout_event(req_id: str) -> CuOptSolveEvent:
    return CuOptSolveEvent(
        SolveEventStatus.TIMEOUT, req_id, None, (), f"cuOpt server request {req_id} did not finish in time"
    )


def gone_event(req_id: str, output_uri: str) -> CuOptSolveEvent:
    """404 for a request this task submitted: a result already stored ends the wait as what it says;
    otherwise the server lost it (restart) — an ERROR, so a retry of the task submits it again."""
    stored = already_stored(output_uri, req_id)
    if stored is not None:
        return stored_event(req_id, None, stored)
    return CuOptSolveEvent(SolveEventStatus.ERROR, req_id, None, (), proto.gone_message(req_id))


def answer_event(answer: proto.SolutionAnswer, stored: Any = None) -> CuOptSolveEvent:
    """The terminal event of a finished poll (``stored``: the persisted result, if any)."""
    if stored is not None:
        return stored_event(answer.req_id, None, stored)
    # The server ends a job in error only over the problem itself (cuOpt's validation or solver
    # refused it, or it was aborted): the same problem fails the same way, so the event carries
    # the "problem refused" code of the outcome policy and the task is not retried.
    return CuOptSolveEvent(
        SolveEventStatus.FAILED, answer.req_id, None, (), answer.message, error_code=PROBLEM_REFUSED
    )


class CuOptServerHook(ServiceHook):
    """Talks to a self-hosted cuOpt server (``cuopt_server`` 26.10, legacy REST or gRPC proxy).

    Connection (type ``cuopt_server``): *host* (``cuopt.internal`` or ``https://cuopt.internal``),
    *port*, *schema* (``http``/``https`` when the host has no scheme), *password* = the gateway
    header's value; extras ``auth_header_name``, ``verify_ssl``, ``ca_bundle``, ``client_version``
    (default ``custom``), ``result_dir`` (local mount of the server's ``CUOPT_RESULT_DIR``).

    :param options: per-solve flags of the submission (``validation_only``, ``solver_logs``,
        warm-start / initial-solution ids).
    :param keep_on_server: keep the solution and log on the server after the result is stored.
    """

    conn_name_attr = "cuopt_conn_id"
    default_conn_name = "cuopt_server_default"
    conn_type = proto.CONN_TYPE
    hook_name = "NVIDIA cuOpt (self-hosted)"
    service = SERVICE

    def __init__(
        self,
        cuopt_conn_id: str = default_conn_name,
        *,
        options: proto.SubmitOptions | None = None,
        keep_on_server: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cuopt_conn_id = cuopt_conn_id
        self.options = options or proto.SubmitOptions()
        self.keep_on_server = keep_on_server

    @cached_property
    def settings(self) -> proto.CuOptServerSettings:
        """The connection, resolved once (the gateway secret registered with the masker)."""
        conn = self.get_connection(self.cuopt_conn_id)
        settings = proto.CuOptServerSettings.from_connection(
            conn.host, conn.port, conn.schema, conn.password, conn.extra_dejson
        )
        mask_secrets(settings.auth_value)
        return settings

    def api_headers(self) -> dict[str, str]:
        return {**super().api_headers(), **self.settings.headers()}

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        idempotent: bool = True,
        cap: int = proto.POLL_ANSWER_CAP,
        **kwargs: Any,
    ) -> Answer:
        """One API call: Content-Type checked before anything is decoded, outcome errors returned."""
        return self.call_api(
            method,
            path,
            what=what,
            idempotent=idempotent,
            decode=functools.partial(proto.decode_answer, cap=cap),
            accept=proto.is_outcome,
            cap=cap,
            **kwargs,
        )

    # ------------------------------------------------------------------------------------ solving
    def resolve_function(self, *_: Any) -> tuple[str, str]:
        """A self-hosted server has no functions to choose from (the NVCF hook's step, a no-op)."""
        return ("", "")

    def submit(
        self, prepared: PreparedProblem, function: Any = None, *, action: str | None = None, **_: Any
    ) -> tuple[proto.SolutionAnswer, None]:
        """``POST /cuopt/request``: compact JSON inline, or the staged zlib file streamed with its exact
        Content-Length; returns the pending answer (and no asset: the NVCF hook's return shape).

        An upload cut before its last byte was provably not taken and is sent again from the first
        byte; an answer lost after the whole body went out is ambiguous (the server may have queued
        the job, and it cannot be looked up without its id), so it fails without a second solve.
        """
        if action:
            self.log.info("cuOpt server infers the problem type; action=%r is not sent", action)
        path = proto.submit_path(self.options)
        for number in range(1, TRANSFER_ATTEMPTS + 1):
            body: bytes | FileBody
            if prepared.is_asset:
                body = FileBody(str(prepared.asset_path), prepared.asset_size, prepared.what)
            else:
                assert prepared.data is not None
                body = prepared.data
            try:
                answer = self._call(
                    "POST",
                    path,
                    what="submit problem",
                    idempotent=False,
                    data=body,
                    headers=proto.body_headers(prepared.is_asset),
                    read_timeout=TRANSFER_READ_TIMEOUT if prepared.is_asset else None,
                )
            except (ServiceUnavailableError, ServiceHTTPError, MalformedResponseError) as exc:
                cut = isinstance(body, FileBody) and not body.complete
                if cut and isinstance(exc, ServiceUnavailableError) and number < TRANSFER_ATTEMPTS:
                    self.log.warning(
                        "Upload of %s broke after %s of %s bytes (%s); sending it again",
                        prepared.what,
                        f"{body.sent:,}",
                        f"{body.size:,}",
                        short_error(exc),
                    )
                    continue
                if not cut and is_ambiguous(exc):
                    raise AmbiguousSubmissionError(
                        f"Submitting {prepared.what} to the cuOpt server failed after the whole problem was "
                        f"sent ({exc}). The server may have queued it and offers no way to find it without "
                        "its id, so it was not sent again (that could start a second solve)."
                    ) from exc
                raise
            req_id = proto.submitted_id(answer.status, answer.payload)
            size = prepared.asset_size if prepared.is_asset else prepared.raw_size
            self.log.info(
                "cuOpt server accepted %s as request %s (%s bytes%s)",
                prepared.what,
                req_id,
                f"{size:,}",
                " zlib-compressed" if prepared.is_asset else "",
            )
            return proto.SolutionAnswer(proto.SolutionState.PENDING, req_id), None
        raise AssertionError("unreachable")  # pragma: no cover

    def poll(
        self, req_id: str, poll_seconds: Any = None, *, deadline: float | None = None
    ) -> proto.SolutionAnswer:
        """``GET /cuopt/solution/{id}``, read up to ``POLL_ANSWER_CAP`` bytes (a larger answer is a
        finished result, streamed later); a 404 is :class:`RequestGoneError`."""
        try:
            answer = self._call("GET", proto.solution_path(req_id), what="poll solution", deadline=deadline)
        except ResponseTooLargeError:
            return proto.SolutionAnswer(proto.SolutionState.LARGE, req_id)
        result = proto.interpret_solution(req_id, answer.status, answer.payload)
        if result.status is proto.SolutionState.GONE:
            raise RequestGoneError(result.message)
        return result

    @cached_property
    def results(self) -> ServerResults:
        """Result storage, the same code the trigger runs (``hooks/cuopt_server_results.py``)."""
        return ServerResults(self.api, self.settings, self.log)

    def outcome_event(
        self, answer: proto.SolutionAnswer, asset_id: Any, output_uri: str, *, deadline: float | None = None
    ) -> CuOptSolveEvent:
        """The terminal event of a finished poll; stores the result first when there is one."""
        if answer.status is proto.SolutionState.FAILED:
            return answer_event(answer)
        return answer_event(answer, self.results.store(answer, output_uri, deadline=deadline))

    def gone_outcome(self, req_id: str, asset_id: Any, output_uri: str) -> CuOptSolveEvent:
        """The one "the server said 404" policy (see :func:`gone_event`)."""
        return gone_event(req_id, output_uri)

    def wait_for_result(
        self, req_id: str, asset_id: Any, output_uri: str, *, deadline: float, poll_seconds: int
    ) -> CuOptSolveEvent:
        """Poll until the job ends or the wall-clock ``deadline`` passes (also during a call), about
        once a second at first, backing off to ``poll_seconds``. The trigger's wait, in the same order."""
        attempt = 0
        while True:
            if time.time() >= deadline:
                return timeout_event(req_id)
            try:
                answer = self.poll(req_id, deadline=deadline)
            except RequestGoneError:
                return gone_event(req_id, output_uri)
            except (ServiceUnavailableError, ServiceHTTPError, ProtocolError):
                if time.time() >= deadline:
                    return timeout_event(req_id)
                raise
            if not answer.pending:
                return self.outcome_event(answer, None, output_uri, deadline=deadline)
            pause = poll_delay(attempt, FIRST_POLL_SECONDS, max(FIRST_POLL_SECONDS, float(poll_seconds)))
            attempt += 1
            time.sleep(min(pause, max(0.0, deadline - time.time())))

    # ------------------------------------------------------------------------------------ lifecycle
    def cancel(self, req_id: str) -> None:
        """``DELETE /cuopt/request/{id}`` without flags: stop a queued or running job (finished or
        unknown ones count zero)."""
        answer = self._call("DELETE", proto.request_path(req_id), what="abort request")
        self.log.info("Asked the cuOpt server to abort request %s: %s", req_id, answer.payload)

    def cancel_best_effort(self, req_id: str | None) -> None:
        if not req_id:
            return
        try:
            self.cancel(req_id)
        except Exception as exc:  # never mask the task's own outcome
            self.log.warning("Could not abort cuOpt server request %s: %s", req_id, short_error(exc))

    def delete_from_server(self, req_id: str) -> None:
        """Delete the stored solution and the solver log (best effort; already gone counts as done)."""
        paths = [proto.solution_path(req_id)] + (
            [proto.delete_log_path(req_id)] if self.options.solver_logs else []
        )
        for path in paths:
            try:
                self._call("DELETE", path, what="delete solution")
            except ServiceHTTPError as exc:
                if exc.status_code != 404:
                    self.log.warning("Could not delete /%s on the cuOpt server: %s", path, short_error(exc))
            except Exception as exc:
                self.log.warning("Could not delete /%s on the cuOpt server: %s", path, short_error(exc))
        self.log.info(
            "Deleted cuOpt server request %s (solution%s)", req_id, " and log" if len(paths) > 1 else ""
        )

    def copy_solver_log(self, req_id: str, max_bytes: int = proto.LOG_TAIL_BYTES) -> None:
        """Write the end of the job's solver log (the last ``max_bytes``) into the task log, redacted."""
        try:
            answer = self._call(
                "GET", proto.log_path(req_id, 0), what="read solver log", cap=proto.MAX_LOG_ANSWER_BYTES
            )
            if answer.status >= 400:
                self.log.info(
                    "cuOpt server has no solver log for request %s: %s",
                    req_id,
                    proto.error_text(answer.payload),
                )
                return
            lines, _ = proto.log_lines(answer.payload)
        except Exception as exc:  # a log is a courtesy; the solve's outcome stands
            self.log.warning("Could not read the solver log of request %s: %s", req_id, short_error(exc))
            return
        kept, dropped = proto.log_tail([line for line in lines if line.strip()], max_bytes)
        if dropped:
            self.log.info("cuOpt solver log of %s: %d earlier lines left out", req_id, dropped)
        for line in kept:
            self.log.info("cuOpt solver log: %s", redact_text(line, 2000))

    def finish(
        self,
        event: CuOptSolveEvent,
        *,
        on_infeasible: str = "fail",
        remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
        publish: Publish | None = None,
    ) -> list[str]:
        """What operator and sensor do once a wait ends, in either mode: copy the solver log, clean up
        on the server (unless ``keep_on_server``; a timed-out job is aborted first), then the shared
        cuOpt completion (:func:`~airflow_provider.hooks.cuopt_outcome.finish_solve`): summary, notes
        and warnings, paths or the error the outcome policy names."""
        req_id = event.req_id
        status = event.status
        if self.options.solver_logs and status is not SolveEventStatus.ERROR:
            self.copy_solver_log(req_id, remote_log_max_bytes)
        if status is SolveEventStatus.TIMEOUT:
            self.cancel_best_effort(req_id)
        if status is not SolveEventStatus.ERROR and not self.keep_on_server:
            self.delete_from_server(req_id)
        return finish_solve(
            event,
            service=SUMMARY_SERVICE,
            describe=f"cuOpt server request {req_id}",
            logger=self.log,
            on_infeasible=on_infeasible,
            remote_log_max_bytes=remote_log_max_bytes,
            publish=publish,
            timeout_note="; the job was aborted on the server.",
        )

    def delete_asset_best_effort(self, asset_id: Any) -> bool:
        """No assets on a self-hosted server (the NVCF hook's clean-up step, a no-op)."""
        return True

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's *Test* button: ask the server's health endpoint."""
        try:
            answer = self._call("GET", proto.HEALTH_PATH, what="health")
        except Exception as exc:
            return False, str(exc)
        ok, message = proto.health_message(answer.payload)
        return ok, f"{message} at {self.settings.base_url}"
