"""Synchronous NVIDIA cuOpt (NVCF) hook (requests), used on workers: tokens, functions, assets, solves.

The protocol (paths, envelopes, statuses, function choice) lives in
:mod:`airflow_provider.protocol.cuopt`, tokens in :mod:`airflow_provider.protocol.nvcf_tokens`,
problem staging in :mod:`airflow_provider.hooks.cuopt_problems` and result retrieval in
:mod:`airflow_provider.hooks.cuopt_results` (shared with the trigger). Tokens are kept in memory
only and checked before every call. Presigned asset uploads and result downloads go through a
session without credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from airflow_provider.events.cuopt import CuOptSolveEvent, event_for, timeout_event
from airflow_provider.events.summary import Publish
from airflow_provider.exceptions import (
    AmbiguousSubmissionError,
    MalformedResponseError,
    ProtocolError,
    RequestGoneError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks.base import ServiceHook
from airflow_provider.hooks.cuopt_outcome import finish_solve
from airflow_provider.hooks.cuopt_problems import PreparedProblem
from airflow_provider.hooks.cuopt_results import ResultRetriever, gone_outcome
from airflow_provider.protocol import cuopt as proto
from airflow_provider.protocol import nvcf_tokens
from airflow_provider.protocol.outcomes import DEFAULT_REMOTE_LOG_MAX_BYTES
from airflow_provider.utils.http import Answer
from airflow_provider.utils.payloads import StreamingBody
from airflow_provider.utils.polling import early_answer_pause
from airflow_provider.utils.presigned import file_chunks
from airflow_provider.utils.redact import mask_secrets, redact_url
from airflow_provider.utils.retry import is_ambiguous, restarting
from airflow_provider.utils.sync_http import SyncApi

SERVICE = "NVCF"
#: ``service`` of this backend's ``solution_summary``.
SUMMARY_SERVICE = "cuopt-nvcf"


class CuOptHook(ServiceHook):
    """Talks to NVIDIA cuOpt on NVCF with an API key (SAK) or client credentials (JWT).

    Connection (type ``cuopt``): *password* = NVCF API key, or extras ``client_id`` /
    ``client_secret`` (+ ``token_url``); *host* = NVCF endpoint (default
    ``https://api.nvcf.nvidia.com``); extras ``function_id`` / ``function_name`` /
    ``function_version_id``, ``verify_ssl``, ``ca_bundle``.
    """

    conn_name_attr = "cuopt_conn_id"
    default_conn_name = "cuopt_default"
    conn_type = "cuopt"
    hook_name = "NVIDIA cuOpt (NVCF)"
    service = SERVICE

    def __init__(self, cuopt_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cuopt_conn_id = cuopt_conn_id
        self._tokens = nvcf_tokens.TokenCache()

    @cached_property
    def settings(self) -> proto.CuOptSettings:
        """The connection, resolved once (API key / client secret registered with the masker)."""
        conn = self.get_connection(self.cuopt_conn_id)
        settings = proto.CuOptSettings.from_connection(conn.host, conn.password, conn.extra_dejson)
        mask_secrets(settings.api_key, settings.client_secret)
        return settings

    def api_headers(self) -> dict[str, str]:
        """JSON both ways on every API call; the bearer token is added per attempt."""
        return {**super().api_headers(), "Content-Type": "application/json"}

    # ------------------------------------------------------------------------------------ tokens
    def auth_headers(self) -> Mapping[str, str]:
        """``Authorization: Bearer …`` with the API key or a fresh JWT (checked before every attempt)."""
        return {"Authorization": f"Bearer {self.bearer_token()}"}

    def renew_credentials(self) -> bool:
        """A 401 with client credentials drops the cached JWT: the attempt is repeated with a new one."""
        if not self.settings.uses_client_credentials:
            return False
        self.log.warning("NVCF rejected the access token; fetching a new one")
        self._tokens.invalidate()
        return True

    @cached_property
    def _token_api(self) -> SyncApi:
        """The token endpoint's call path: the API session, without the bearer-token hook."""
        return SyncApi(SERVICE, self.api.session, self.retry_policy, self.timeouts, self.log)

    def bearer_token(self) -> str:
        """The API key, or a cached JWT refreshed before it expires."""
        settings = self.settings
        if settings.api_key:
            return settings.api_key
        now = time.time()
        if token := self._tokens.current(now):
            return token
        assert settings.client_id and settings.client_secret
        answer = self._token_api.call(
            "POST",
            settings.token_url,
            target=redact_url(settings.token_url),
            what="token request",
            idempotent=True,
            data=nvcf_tokens.token_request_form(),
            headers=nvcf_tokens.token_request_headers(settings.client_id, settings.client_secret),
        )
        token = nvcf_tokens.Token.from_token_response(answer.payload, now)
        self._tokens.store(token, now)
        self.log.info("Obtained an NVCF access token valid for %.0fs", token.expires_at - now)
        return token.value

    # ------------------------------------------------------------------------------------ plumbing
    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        what: str,
        body: bytes | None = None,
        read_timeout: float | None = None,
        accept_envelope: bool = False,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """One API call (see :meth:`SyncApi.call`). With ``accept_envelope``, an NVCF error answer that
        carries an envelope (``status`` errored/rejected and a ``reqId``) is returned rather than
        raised: it is the request's final outcome, not a transport failure."""
        return self.call_api(
            method,
            path,
            what=what,
            idempotent=idempotent,
            data=body,
            headers=headers,
            accept=proto.is_error_envelope if accept_envelope else None,
            read_timeout=read_timeout,
            deadline=deadline,
        )

    # ------------------------------------------------------------------------------------ functions
    def list_functions(self) -> list[dict[str, Any]]:
        """GET ``/v2/nvcf/functions``: the function versions the credentials can see."""
        payload = self._call("GET", proto.FUNCTIONS_PATH, idempotent=True, what="list functions").payload
        functions = payload.get("functions") if isinstance(payload, Mapping) else None
        if not isinstance(functions, list):
            raise ProtocolError(f"NVCF function list has no 'functions' array: {str(payload)[:300]}")
        return [f for f in functions if isinstance(f, dict)]

    def resolve_function(
        self, function_id: str | None = None, function_name: str | None = None, version_id: str | None = None
    ) -> tuple[str, str]:
        """(function id, version id): task arguments win over the connection's defaults; a pinned
        id+version needs no lookup."""
        s = self.settings
        fid = function_id or (None if function_name else s.function_id)
        name = function_name or (None if function_id else s.function_name)
        vid = version_id or s.function_version_id
        if fid and vid:
            return fid, vid
        chosen = proto.select_function(
            self.list_functions(), function_id=fid, function_name=name, version_id=vid
        )
        self.log.info("Using NVCF function %s version %s", *chosen)
        return chosen

    # ------------------------------------------------------------------------------------ assets
    def create_asset(self) -> tuple[str, str]:
        """POST ``/v2/nvcf/assets`` → (asset id, presigned upload URL)."""
        body = proto.asset_request_body()
        payload = self._call(
            "POST", proto.ASSETS_PATH, idempotent=False, what="create asset", body=body
        ).payload
        return proto.asset_from_answer(payload)

    def upload_asset(self, upload_url: str, path: str, size: int, what: str) -> None:
        """Stream a staged asset file to its presigned URL with the headers NVCF signs."""
        body = StreamingBody(file_chunks(path), size, what)
        self.transfers.put(upload_url, body, headers=proto.asset_upload_headers(), what="asset upload")

    def delete_asset(self, asset_id: str) -> bool:
        """Delete an asset; an asset that is already gone counts as deleted."""
        try:
            self._call("DELETE", proto.asset_path(asset_id), idempotent=True, what="delete asset")
        except ServiceHTTPError as exc:
            if exc.status_code != 404:
                raise
        self.log.info("Deleted NVCF asset %s", asset_id)
        return True

    def delete_asset_best_effort(self, asset_id: str | None) -> bool:
        """:meth:`delete_asset`, reporting (never raising) a failure; NVCF expires assets after 24 h."""
        if not asset_id:
            return True
        try:
            return self.delete_asset(asset_id)
        except Exception as exc:  # never mask the solve's own outcome
            self.log.warning("Could not delete NVCF asset %s (NVCF removes it after 24 h): %s", asset_id, exc)
            return False

    # ------------------------------------------------------------------------------------ solving
    def submit(
        self,
        prepared: PreparedProblem,
        function: tuple[str, str],
        *,
        poll_seconds: int = proto.DEFAULT_POLL_SECONDS,
        action: str | None = None,
        on_asset: Callable[[str], None] | None = None,
    ) -> tuple[proto.Invocation, str | None]:
        """Upload the asset if needed, then invoke; returns the first answer and the asset id.

        ``prepared`` comes from :func:`~airflow_provider.hooks.cuopt_problems.prepare_problem` (all
        local checks done); ``on_asset`` is called as soon as an asset exists, so the caller can clean
        it up whatever happens next.
        """
        asset_id = self._stage_asset(prepared, on_asset) if prepared.is_asset else None
        body = proto.invoke_body(
            data_json=prepared.data, asset_id=asset_id, poll_seconds=poll_seconds, action=action
        )
        return self.invoke(function, body, poll_seconds, asset_id=asset_id), asset_id

    def _stage_asset(self, prepared: PreparedProblem, on_asset: Callable[[str], None] | None) -> str:
        """Create an asset and stream the staged file to it; a failed or expired upload is retried
        from the file's first byte with a new asset (the broken one is deleted)."""
        assert prepared.asset_path is not None
        created: list[str] = []

        def attempt(_: int) -> str:
            asset_id, upload_url = self.create_asset()
            created.append(asset_id)
            if on_asset:
                on_asset(asset_id)
            self.log.info(
                "Uploading %s as NVCF asset %s (%s bytes zlib-compressed from %s)",
                prepared.what,
                asset_id,
                f"{prepared.asset_size:,}",
                f"{prepared.raw_size:,}",
            )
            self.upload_asset(upload_url, str(prepared.asset_path), prepared.asset_size, prepared.what)
            return asset_id

        def drop_broken(_: BaseException) -> None:
            self.delete_asset_best_effort(created[-1] if created else None)

        return restarting("NVCF asset upload", attempt, logger=self.log, on_failure=drop_broken)

    def invoke(
        self, function: tuple[str, str], body: bytes, poll_seconds: int, *, asset_id: str | None = None
    ) -> proto.Invocation:
        """POST the exec envelope. Not idempotent: only re-sent when NVCF provably did not take it.

        NVCF has no way to look a request up without its id, so after an ambiguous failure (the
        answer was lost, or a 500/502/504 came back) the task fails without retrying rather than risk
        a second solve.
        """
        try:
            answer = self._call(
                "POST",
                proto.exec_path(*function),
                idempotent=False,
                what="invoke function",
                body=body,
                read_timeout=self.timeouts.long_poll_read(poll_seconds),
                accept_envelope=True,
            )
        except (ServiceHTTPError, ServiceUnavailableError, MalformedResponseError) as exc:
            if not is_ambiguous(exc):
                raise
            raise AmbiguousSubmissionError(proto.ambiguous_invoke_message(function, exc, asset_id)) from exc
        return self._interpret(answer)

    def poll(
        self, req_id: str, poll_seconds: int = proto.DEFAULT_POLL_SECONDS, *, deadline: float | None = None
    ) -> proto.Invocation:
        """Long-poll the status of a request (NVCF holds the call up to ``poll_seconds``); a 404 is
        :class:`RequestGoneError`."""
        try:
            answer = self._call(
                "GET",
                proto.status_path(req_id),
                idempotent=True,
                what="poll request status",
                read_timeout=self.timeouts.long_poll_read(poll_seconds),
                accept_envelope=True,
                headers=proto.poll_headers(poll_seconds),
                deadline=deadline,
            )
        except ServiceHTTPError as exc:
            if exc.status_code == 404:
                raise RequestGoneError(proto.gone_message(req_id)) from exc
            raise
        return self._interpret(answer)

    def _interpret(self, answer: Answer) -> proto.Invocation:
        return proto.interpret(answer.status, answer.payload, req_id_header=answer.headers.get("NVCF-REQID"))

    @cached_property
    def results(self) -> ResultRetriever:
        """Result retrieval, the same code the trigger runs (``hooks/cuopt_results.py``)."""
        return ResultRetriever(self.transfers, self.log)

    def outcome_event(
        self,
        invocation: proto.Invocation,
        asset_id: str | None,
        output_uri: str,
        *,
        deadline: float | None = None,
    ) -> CuOptSolveEvent:
        """The terminal event for a non-pending answer; stores the result first when there is one."""
        stored = None
        if invocation.status is proto.InvocationStatus.FULFILLED:
            stored = self.results.store(invocation, output_uri, deadline=deadline)
        return event_for(invocation, asset_id, stored)

    def gone_outcome(self, req_id: str, asset_id: str | None, output_uri: str) -> CuOptSolveEvent:
        """The one "NVCF said 404" policy (``hooks/cuopt_results.gone_outcome``), as a hook method so
        operator and sensor ask whichever backend they drive."""
        return gone_outcome(req_id, asset_id, output_uri)

    def wait_for_result(
        self, req_id: str, asset_id: str | None, output_uri: str, *, deadline: float, poll_seconds: int
    ) -> CuOptSolveEvent:
        """Long-poll until the request ends or the wall-clock ``deadline`` passes (also during a
        call); early pending answers are spaced out (never a tight loop). The same decisions, in the
        same order, as the trigger's wait."""
        early = 0
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return timeout_event(req_id, asset_id)
            window = proto.poll_window(poll_seconds, remaining)
            started = time.monotonic()
            try:
                invocation = self.poll(req_id, window, deadline=deadline)
            except RequestGoneError:
                return gone_outcome(req_id, asset_id, output_uri)
            except (ServiceUnavailableError, ServiceHTTPError, ProtocolError):
                if time.time() >= deadline:  # the call was cut at the deadline: that is the timeout
                    return timeout_event(req_id, asset_id)
                raise
            if not invocation.pending:
                return self.outcome_event(invocation, asset_id, output_uri, deadline=deadline)
            self.log.debug("NVCF request %s still %s", req_id, invocation.status.value)
            pause = early_answer_pause(time.monotonic() - started, window, early)
            early = early + 1 if pause else 0
            time.sleep(min(pause, max(0.0, deadline - time.time())))

    def finish(
        self,
        event: CuOptSolveEvent,
        *,
        on_infeasible: str = "fail",
        remote_log_max_bytes: int = DEFAULT_REMOTE_LOG_MAX_BYTES,
        publish: Publish | None = None,
    ) -> list[str]:
        """What operator and sensor do once a wait ends, in either mode: clean up, then the shared
        completion (:func:`~airflow_provider.hooks.cuopt_outcome.finish_solve`): summary, notes and
        warnings in the task log, paths or the error the outcome policy names."""
        if event.asset_id and not event.asset_deleted:
            self.delete_asset_best_effort(event.asset_id)
        ids = f"NVCF request {event.req_id}" + (f", asset {event.asset_id}" if event.asset_id else "")
        return finish_solve(
            event,
            service=SUMMARY_SERVICE,
            describe=ids,
            logger=self.log,
            on_infeasible=on_infeasible,
            remote_log_max_bytes=remote_log_max_bytes,
            publish=publish,
            timeout_note="; NVCF has no cancel call for exec requests.",
        )

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's *Test* button: list the function versions the credentials can see."""
        try:
            functions = self.list_functions()
        except Exception as exc:
            return False, str(exc)
        return (
            True,
            f"Connected to NVCF at {self.settings.endpoint}: {len(functions)} function version(s) visible",
        )
