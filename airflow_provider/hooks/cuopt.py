"""Synchronous NVIDIA cuOpt (NVCF) hook (requests), used on workers: tokens, functions, assets, solves.

The protocol (paths, envelopes, statuses, function choice, token freshness) lives in
:mod:`airflow_provider.protocol.cuopt`. Tokens are kept in memory only and checked before every
call. Presigned asset uploads and result downloads go through a session without credentials.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import requests

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus, event_for, timeout_event
from airflow_provider.exceptions import (
    AmbiguousSubmissionError,
    MalformedResponseError,
    ProtocolError,
    RequestGoneError,
    RunFailedError,
    RunTimeoutError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks._base import ServiceHook
from airflow_provider.hooks._cuopt_transfer import SERVICE, CuOptTransfers
from airflow_provider.protocol import cuopt as proto
from airflow_provider.utils.http import (
    Answer,
    parse_json_answer,
)
from airflow_provider.utils.redact import mask_secrets, redact_url
from airflow_provider.utils.retry import is_ambiguous
from airflow_provider.utils.sync_http import call_with_retries, raise_for_status


class CuOptHook(CuOptTransfers, ServiceHook):
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

    def __init__(self, cuopt_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cuopt_conn_id = cuopt_conn_id
        self._tokens = proto.TokenCache()

    @cached_property
    def settings(self) -> proto.CuOptSettings:
        conn = self.get_connection(self.cuopt_conn_id)
        settings = proto.CuOptSettings.from_connection(conn.host, conn.password, conn.extra_dejson)
        mask_secrets(settings.api_key, settings.client_secret)
        return settings

    def bearer_token(self) -> str:
        """The API key, or a cached JWT refreshed before it expires (checked before every call)."""
        settings = self.settings
        if settings.api_key:
            return settings.api_key
        now = time.time()
        if token := self._tokens.current(now):
            return token
        basic = base64.b64encode(f"{settings.client_id}:{settings.client_secret}".encode()).decode()

        def fetch() -> requests.Response:
            response = self.session.post(
                settings.token_url,
                data=proto.token_request_form(),
                headers={"Authorization": f"Basic {basic}"},
                timeout=self.timeout,
            )
            raise_for_status(response, SERVICE, "POST", redact_url(settings.token_url))
            return response

        response = call_with_retries(
            self.retry_policy,
            idempotent=True,
            logger=self.log,
            service=SERVICE,
            what="token request",
            fn=fetch,
        )
        token = proto.Token.from_token_response(parse_json_answer(response.content, SERVICE, "token"), now)
        mask_secrets(token.value)
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
        json_body: Any = None,
        read_timeout: float | None = None,
        accept_envelope: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One API call with a fresh token and the shared retry policy; the JSON body is parsed inside
        the retry loop (a garbled read is retried, a garbled create is an ambiguous failure).

        A 401 with client credentials drops the cached token and tries once more with a new one.
        With ``accept_envelope``, an NVCF error answer that carries an envelope (``status``
        errored/rejected and a ``reqId``) is returned rather than raised: it is the request's
        final outcome, not a transport failure.
        """
        url = self.settings.url(path)
        timeout = (self.timeout[0], read_timeout or self.timeout[1])

        def attempt() -> Answer:
            for renew in (False, True):
                headers = {"Authorization": f"Bearer {self.bearer_token()}", **(extra_headers or {})}
                response = self.session.request(method, url, json=json_body, headers=headers, timeout=timeout)
                if response.status_code == 401 and self.settings.uses_client_credentials and not renew:
                    self.log.warning("NVCF rejected the access token (%s); fetching a new one", what)
                    self._tokens.invalidate()
                    continue
                payload = None
                if response.status_code < 400 or accept_envelope:
                    payload = parse_json_answer(response.content, SERVICE, what)
                if response.status_code >= 400 and not (
                    accept_envelope and proto.is_error_envelope(response.status_code, payload)
                ):
                    raise_for_status(response, SERVICE, method, f"/{path}")
                return Answer(response.status_code, response.headers, payload)
            raise AssertionError("unreachable")  # pragma: no cover

        return call_with_retries(
            self.retry_policy, idempotent=idempotent, logger=self.log, service=SERVICE, what=what, fn=attempt
        )

    # ------------------------------------------------------------------------------------ functions
    def list_functions(self) -> list[dict[str, Any]]:
        payload = self._call("GET", proto.FUNCTIONS_PATH, idempotent=True, what="list functions").payload
        functions = payload.get("functions") if isinstance(payload, Mapping) else None
        if not isinstance(functions, list):
            raise ProtocolError(f"NVCF function list has no 'functions' array: {str(payload)[:300]}")
        return [f for f in functions if isinstance(f, dict)]

    def resolve_function(
        self, function_id: str | None = None, function_name: str | None = None, version_id: str | None = None
    ) -> tuple[str, str]:
        """Task arguments win over the connection's defaults; a pinned id+version needs no lookup."""
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
    # ------------------------------------------------------------------------------------ solving
    def invoke(
        self, function: tuple[str, str], body: Mapping[str, Any], poll_seconds: int
    ) -> proto.Invocation:
        """POST the exec envelope. Not idempotent: only re-sent when NVCF provably did not take it.

        NVCF has no way to look a request up without its id, so after an ambiguous failure (the
        answer was lost, or a 500/502/504 came back) the task fails without retrying rather than risk
        a second solve.
        """
        try:
            response = self._call(
                "POST",
                proto.exec_path(*function),
                idempotent=False,
                what="invoke function",
                json_body=body,
                read_timeout=poll_seconds + 30,
                accept_envelope=True,
            )
        except (ServiceHTTPError, ServiceUnavailableError, MalformedResponseError) as exc:
            if not is_ambiguous(exc):
                raise
            assets = body.get("requestHeader", {}).get("inputAssetReferences") or []
            raise AmbiguousSubmissionError(
                f"Invoking NVCF function {function[0]} (version {function[1]}) failed ambiguously: {exc}. NVCF may "
                "have accepted the request, and it offers no way to find it without its request id, so it was not "
                "sent again (that could start a duplicate solve). Check the function's queue/usage on NVCF before "
                f"re-running this task{'; input asset ' + assets[0] if assets else ''}."
            ) from exc
        return self._interpret(response)

    def poll(self, req_id: str, poll_seconds: int = proto.DEFAULT_POLL_SECONDS) -> proto.Invocation:
        """Long-poll the status of a request (NVCF holds the call up to ``poll_seconds``)."""
        try:
            response = self._call(
                "GET",
                proto.status_path(req_id),
                idempotent=True,
                what="poll request status",
                read_timeout=poll_seconds + 30,
                accept_envelope=True,
                extra_headers=proto.poll_headers(poll_seconds),
            )
        except ServiceHTTPError as exc:
            if exc.status_code == 404:
                raise RequestGoneError(proto.gone_message(req_id)) from exc
            raise
        return self._interpret(response)

    def _interpret(self, answer: Answer) -> proto.Invocation:
        return proto.interpret(answer.status, answer.payload, req_id_header=answer.headers.get("NVCF-REQID"))

    def outcome_event(
        self, invocation: proto.Invocation, asset_id: str | None, output_uri: str
    ) -> CuOptSolveEvent:
        """The terminal event for a non-pending answer; stores the result first when there is one."""
        stored = None
        if invocation.status is proto.InvocationStatus.FULFILLED:
            stored = self.store_result(invocation, output_uri)
            self.log.info(
                "Stored the result of NVCF request %s at %s", invocation.req_id, ", ".join(stored.paths)
            )
        return event_for(invocation, asset_id, stored)

    def wait_for_result(
        self, req_id: str, asset_id: str | None, output_uri: str, *, deadline: float, poll_seconds: int
    ) -> CuOptSolveEvent:
        """Long-poll until the request ends or the wall-clock ``deadline`` passes."""
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return timeout_event(req_id, asset_id)
            invocation = self.poll(req_id, max(1, min(poll_seconds, int(remaining) or 1)))
            if not invocation.pending:
                return self.outcome_event(invocation, asset_id, output_uri)
            self.log.debug("NVCF request %s still %s", req_id, invocation.status.value)

    def finish(self, event: CuOptSolveEvent) -> list[str]:
        """What operator and sensor do once a wait ends, in either mode: clean up, then paths or an error."""
        if event.asset_id and not event.asset_deleted:
            self.delete_asset_best_effort(event.asset_id)
        ids = f"request {event.req_id}" + (f", asset {event.asset_id}" if event.asset_id else "")
        if event.status is SolveEventStatus.SUCCEEDED:
            self.log.info("NVCF %s succeeded; result at %s", ids, ", ".join(event.output_paths))
            return list(event.output_paths)
        if event.status is SolveEventStatus.INFEASIBLE:
            raise RunFailedError(
                f"cuOpt found no solution ({ids}): {event.message}. Result kept at {list(event.output_paths)}"
            )
        if event.status is SolveEventStatus.TIMEOUT:
            raise RunTimeoutError(f"{event.message} ({ids}); NVCF has no cancel call for exec requests.")
        if event.status is SolveEventStatus.ERROR:
            raise ServiceUnavailableError(f"Waiting for NVCF {ids} failed: {event.message}")
        raise RunFailedError(f"NVCF {ids} failed: {event.message}")

    def test_connection(self) -> tuple[bool, str]:
        try:
            functions = self.list_functions()
        except Exception as exc:
            return False, str(exc)
        return (
            True,
            f"Connected to NVCF at {self.settings.endpoint}: {len(functions)} function version(s) visible",
        )


# ---------------------------------------------------------------------------------------------- helpers
