"""Synchronous NVIDIA cuOpt (NVCF) hook (requests), used on workers: tokens, functions, assets, solves.

The protocol (paths, envelopes, statuses, function choice, token freshness) lives in
:mod:`airflow_provider.protocol.cuopt`. Tokens are kept in memory only and checked before every
call. Presigned asset uploads and result downloads go through a session without credentials.
"""

from __future__ import annotations

import base64
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider.events.cuopt import CuOptSolveEvent, SolveEventStatus, event_for, timeout_event
from airflow_provider.exceptions import (
    RequestGoneError,
    ProtocolError,
    RunFailedError,
    RunTimeoutError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks._cuopt_payload import PreparedProblem
from airflow_provider.hooks._cuopt_results import StoredResult, store_inline_result, store_zip_result
from airflow_provider.protocol import cuopt as proto
from airflow_provider.utils import uris
from airflow_provider.utils.http import DEFAULT_TIMEOUT, TRANSFER_READ_TIMEOUT, USER_AGENT
from airflow_provider.utils.payloads import StreamingBody
from airflow_provider.utils.redact import mask_secrets, redact_url
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy
from airflow_provider.utils.sync_http import call_with_retries, raise_for_status

SERVICE = "NVCF"


class CuOptHook(BaseHook):
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

    def __init__(
        self,
        cuopt_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.cuopt_conn_id = cuopt_conn_id
        self.retry_policy = retry_policy
        self.timeout = timeout
        self._tokens = proto.TokenCache()

    # ------------------------------------------------------------------------------------ connection
    @cached_property
    def settings(self) -> proto.CuOptSettings:
        conn = self.get_connection(self.cuopt_conn_id)
        settings = proto.CuOptSettings.from_connection(conn.host, conn.password, conn.extra_dejson)
        mask_secrets(settings.api_key, settings.client_secret)
        return settings

    @cached_property
    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        session.verify = self.settings.tls.requests_verify
        return session

    @cached_property
    def transfer_session(self) -> requests.Session:
        """Presigned asset uploads and result downloads: no credentials, ever."""
        session = requests.Session()
        session.verify = self.settings.tls.requests_verify
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        for name in ("session", "transfer_session"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()

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
        token = proto.Token.from_token_response(_json(response, "token"), now)
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
    ) -> requests.Response:
        """One API call with a fresh token and the shared retry policy.

        A 401 with client credentials drops the cached token and tries once more with a new one.
        With ``accept_envelope``, an NVCF error answer that carries an envelope (``status``
        errored/rejected and a ``reqId``) is returned rather than raised: it is the request's
        final outcome, not a transport failure.
        """
        url = self.settings.url(path)
        timeout = (self.timeout[0], read_timeout or self.timeout[1])

        def attempt() -> requests.Response:
            for renew in (False, True):
                headers = {"Authorization": f"Bearer {self.bearer_token()}", **(extra_headers or {})}
                response = self.session.request(method, url, json=json_body, headers=headers, timeout=timeout)
                if response.status_code == 401 and self.settings.uses_client_credentials and not renew:
                    self.log.warning("NVCF rejected the access token (%s); fetching a new one", what)
                    self._tokens.invalidate()
                    continue
                if accept_envelope and _is_error_envelope(response):
                    return response
                raise_for_status(response, SERVICE, method, f"/{path}")
                return response
            raise AssertionError("unreachable")  # pragma: no cover

        return call_with_retries(
            self.retry_policy, idempotent=idempotent, logger=self.log, service=SERVICE, what=what, fn=attempt
        )

    # ------------------------------------------------------------------------------------ functions
    def list_functions(self) -> list[dict[str, Any]]:
        payload = _json(
            self._call("GET", proto.FUNCTIONS_PATH, idempotent=True, what="list functions"), "functions"
        )
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
    def create_asset(self) -> tuple[str, str]:
        body = {"contentType": proto.ASSET_CONTENT_TYPE, "description": proto.ASSET_DESCRIPTION}
        payload = _json(
            self._call("POST", proto.ASSETS_PATH, idempotent=False, what="create asset", json_body=body),
            "asset",
        )
        payload = payload if isinstance(payload, dict) else {}
        asset_id, upload_url = payload.get("assetId"), payload.get("uploadUrl")
        if not isinstance(asset_id, str) or not isinstance(upload_url, str):
            raise ProtocolError(
                f"NVCF asset creation returned no assetId/uploadUrl: {str(payload.keys())[:200]}"
            )
        return asset_id, upload_url

    def upload_asset(self, upload_url: str, path: Path, size: int, what: str) -> None:
        """Stream a staged asset file to its presigned URL with the headers NVCF signs."""
        headers = {
            "Content-Type": proto.ASSET_CONTENT_TYPE,
            "x-amz-meta-nvcf-asset-description": proto.ASSET_DESCRIPTION,
        }
        started = time.monotonic()
        with open(path, "rb") as f:
            body = StreamingBody(iter(lambda: f.read(uris.CHUNK_SIZE), b""), size, what)
            response = self.transfer_session.put(
                upload_url, data=body, headers=headers, timeout=(self.timeout[0], TRANSFER_READ_TIMEOUT)
            )
        raise_for_status(response, SERVICE, "PUT", redact_url(upload_url))
        elapsed = max(time.monotonic() - started, 1e-6)
        self.log.info(
            "Uploaded asset (%s bytes) in %.1fs (%.1f MB/s)", f"{size:,}", elapsed, size / elapsed / 1e6
        )

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
        if not asset_id:
            return True
        try:
            return self.delete_asset(asset_id)
        except Exception as exc:  # never mask the solve's own outcome; NVCF expires assets after 24 h
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

        ``on_asset`` is called as soon as an asset exists, so the caller can clean it up whatever
        happens next.
        """
        asset_id = None
        if prepared.is_asset:
            asset_id, upload_url = self.create_asset()
            if on_asset:
                on_asset(asset_id)
            self.log.info(
                "Uploading %s as NVCF asset %s (%s bytes zlib-compressed from %s)",
                prepared.what,
                asset_id,
                f"{prepared.asset_size:,}",
                f"{prepared.raw_size:,}",
            )
            assert prepared.asset_path is not None
            self.upload_asset(upload_url, prepared.asset_path, prepared.asset_size, prepared.what)
        body = proto.invoke_body(
            data=prepared.data, asset_id=asset_id, poll_seconds=poll_seconds, action=action
        )
        return self.invoke(function, body, poll_seconds), asset_id

    def invoke(
        self, function: tuple[str, str], body: Mapping[str, Any], poll_seconds: int
    ) -> proto.Invocation:
        """POST the exec envelope. Not idempotent: only re-sent when NVCF provably did not take it."""
        response = self._call(
            "POST",
            proto.exec_path(*function),
            idempotent=False,
            what="invoke function",
            json_body=body,
            read_timeout=poll_seconds + 30,
            accept_envelope=True,
        )
        return self._interpret(response, "invoke")

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
                raise RequestGoneError(
                    f"NVCF does not know request {req_id} (HTTP 404): its result was already handed out once "
                    "(NVCF delivers a result only once) or the request expired."
                ) from exc
            raise
        return self._interpret(response, "status")

    def _interpret(self, response: requests.Response, what: str) -> proto.Invocation:
        return proto.interpret(
            response.status_code, _json(response, what), req_id_header=response.headers.get("NVCF-REQID")
        )

    def store_result(self, invocation: proto.Invocation, output_uri: str) -> StoredResult:
        """Persist a fulfilled request's result at ``output_uri`` (inline JSON or the large-result zip)."""
        if invocation.response_reference is None:
            return store_inline_result(invocation.response, output_uri, invocation.req_id)
        with self._downloaded(invocation.response_reference) as zip_path:
            return store_zip_result(zip_path, output_uri, invocation.req_id)

    @contextlib.contextmanager
    def _downloaded(self, url: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="cuopt-result-") as tmp:
            path = Path(tmp) / "result.zip"

            def download() -> None:
                with self.transfer_session.get(
                    url, stream=True, timeout=(self.timeout[0], TRANSFER_READ_TIMEOUT)
                ) as r:
                    raise_for_status(r, SERVICE, "GET", redact_url(url))
                    with open(path, "wb") as out:
                        for chunk in r.iter_content(uris.CHUNK_SIZE):
                            out.write(chunk)

            call_with_retries(
                self.retry_policy,
                idempotent=True,
                logger=self.log,
                service=SERVICE,
                what="download large result",
                fn=download,
            )
            yield path

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
def _json(response: requests.Response, what: str) -> Any:
    import json

    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise ProtocolError(f"NVCF returned malformed JSON for {what}: {exc}") from exc


def _is_error_envelope(response: requests.Response) -> bool:
    if response.status_code < 400 or "json" not in response.headers.get("Content-Type", ""):
        return False
    try:
        return proto.is_error_envelope(response.status_code, response.json())
    except ValueError:
        return False
