"""Synchronous Nextmv Cloud hook (requests), used on workers: submit with upload, wait, fetch output.

The protocol (paths, size decisions, statuses) lives in :mod:`airflow_provider.protocol.nextmv`;
this module only does I/O. Two HTTP sessions are kept apart on purpose: the API session carries the
``Authorization`` header, the transfer session used for presigned URLs never does, so the API key
cannot leak to a storage host even through a redirect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus, event_from_metadata, timeout_event
from airflow_provider.exceptions import (
    InvalidInputError,
    ProtocolError,
    RunFailedError,
    RunTimeoutError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks._nextmv_payload import open_payload, parse_inline_json, write_output
from airflow_provider.protocol import nextmv as proto
from airflow_provider.utils import uris
from airflow_provider.utils.http import DEFAULT_TIMEOUT, TRANSFER_READ_TIMEOUT
from airflow_provider.utils.payloads import JsonShapeCheck, StreamingBody
from airflow_provider.utils.polling import poll_delay
from airflow_provider.utils.redact import mask_secrets, redact_url
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy, is_ambiguous
from airflow_provider.utils.sync_http import call_with_retries, raise_for_status

SERVICE = "Nextmv Cloud"


class NextmvHook(BaseHook):
    """Talks to the Nextmv Cloud API with an API key.

    Connection (type ``nextmv``): *password* = API key; *host* = API endpoint (default
    ``https://api.cloud.nextmv.io``; a local emulator works, e.g. ``http://127.0.0.1:8765``);
    extras ``console_url``, ``verify_ssl`` (default true), ``ca_bundle``.

    :param nextmv_conn_id: Airflow connection id.
    :param retry_policy: bounds of the retry loop for transient errors (429, 5xx, network).
    :param timeout: (connect, read) seconds for API calls.
    """

    conn_name_attr = "nextmv_conn_id"
    default_conn_name = "nextmv_default"
    conn_type = "nextmv"
    hook_name = "Nextmv Cloud"

    def __init__(
        self,
        nextmv_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.nextmv_conn_id = nextmv_conn_id
        self.retry_policy = retry_policy
        self.timeout = timeout

    # ------------------------------------------------------------------------------------ connection
    @cached_property
    def settings(self) -> proto.NextmvSettings:
        conn = self.get_connection(self.nextmv_conn_id)
        settings = proto.NextmvSettings.from_connection(conn.host, conn.password, conn.extra_dejson)
        mask_secrets(settings.api_key)
        return settings

    @cached_property
    def session(self) -> requests.Session:
        """The API session: carries the API key. Never used for presigned URLs."""
        session = requests.Session()
        session.headers.update(self.settings.headers)
        session.verify = self.settings.tls.requests_verify
        return session

    @cached_property
    def transfer_session(self) -> requests.Session:
        """Presigned upload/download session: no Authorization header, ever."""
        session = requests.Session()
        session.trust_env = True
        session.verify = self.settings.tls.requests_verify
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        for name in ("session", "transfer_session"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()

    # ------------------------------------------------------------------------------------ plumbing
    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        what: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One API call with the shared retry policy; HTTP errors become :class:`ServiceHTTPError`."""
        url = self.settings.url(path)

        def attempt() -> requests.Response:
            response = self.session.request(
                method, url, params=params, json=json_body, data=data, timeout=self.timeout, stream=stream
            )
            raise_for_status(response, SERVICE, method, f"/{path}")
            return response

        return call_with_retries(
            self.retry_policy, idempotent=idempotent, logger=self.log, service=SERVICE, what=what, fn=attempt
        )

    def _json(self, response: requests.Response, what: str) -> Any:
        return proto.parse_json_body(response.content, what)

    # ------------------------------------------------------------------------------------ runs
    def request_upload_url(self, app_id: str) -> tuple[str, str]:
        """POST ``/runs/uploadurl`` → (upload_id, presigned upload URL)."""
        response = self._call(
            "POST", proto.upload_url_path(app_id), idempotent=True, what="request upload URL"
        )
        payload = self._json(response, "uploadurl")
        return proto.require_str(payload, "upload_id", "uploadurl"), proto.require_str(
            payload, "upload_url", "uploadurl"
        )

    def upload(self, upload_url: str, body: StreamingBody) -> None:
        """PUT a streaming body to a presigned URL, without the API key, with an exact Content-Length."""
        self.log.info("Uploading %s (%s bytes) to %s", body.what, f"{body.size:,}", redact_url(upload_url))
        started = time.monotonic()
        response = self.transfer_session.put(
            upload_url,
            data=body,
            headers={"Content-Type": "application/octet-stream"},
            timeout=(self.timeout[0], TRANSFER_READ_TIMEOUT),
        )
        raise_for_status(response, SERVICE, "PUT", redact_url(upload_url))
        elapsed = max(time.monotonic() - started, 1e-6)
        self.log.info(
            "Uploaded %s bytes in %.1fs (%.1f MB/s)", f"{body.sent:,}", elapsed, body.sent / elapsed / 1e6
        )

    def create_run(
        self,
        app_id: str,
        body: Mapping[str, Any],
        instance_id: str | None = None,
        *,
        marker: tuple[str, str] | None = None,
    ) -> str:
        """POST ``/runs``. Never blindly re-sent: after an ambiguous failure (response lost, 500/502/504)
        the run list is searched for this submission's ``marker`` (task, submission) first; the run is
        adopted if it exists, the request re-sent once if it provably does not."""
        params = {"instance_id": instance_id} if instance_id else None

        def post() -> str:
            response = self._call(
                "POST",
                proto.runs_path(app_id),
                idempotent=False,
                what="create run",
                params=params,
                json_body=body,
            )
            return proto.require_str(self._json(response, "new run"), "run_id", "new run")

        try:
            return post()
        except (ServiceHTTPError, ServiceUnavailableError) as exc:
            if marker is None or not is_ambiguous(exc):
                raise
            self.log.warning("Creating the run failed ambiguously (%s); checking whether it exists", exc)
            if run_id := self._find_submission(app_id, marker):
                self.log.info("The run was created after all: adopting %s (no duplicate submitted)", run_id)
                return run_id
            self.log.warning(
                "No run carries submission %s: the request did not take effect; sending it again", marker[1]
            )
            return post()

    def _find_submission(
        self, app_id: str, marker: tuple[str, str], waits: tuple[float, ...] = (1.0, 2.0, 4.0)
    ) -> str | None:
        """Look for the run of one submission, giving a slow service a few seconds to show it."""
        for wait in waits:
            time.sleep(wait)
            try:
                found = proto.runs_with_marker(self.list_runs(app_id), task=marker[0], submission=marker[1])
            except Exception as exc:  # the service is still unwell: try again, then give up
                self.log.warning("Listing runs to resolve the ambiguous submission failed: %s", exc)
                continue
            if found:
                return str(found[0]["id"])
        return None

    def list_runs(self, app_id: str, *, max_pages: int = 5) -> list[dict[str, Any]]:
        """GET ``/runs`` (``pagereturn=true`` pages), at most ``max_pages`` pages."""
        runs: list[dict[str, Any]] = []
        token = ""
        for _ in range(max_pages):
            params = {"pagereturn": "true", **({"pagetoken": token} if token else {})}
            payload = self._json(
                self._call("GET", proto.runs_path(app_id), idempotent=True, what="list runs", params=params),
                "runs",
            )
            page = payload.get("runs") if isinstance(payload, dict) else None
            if not isinstance(page, list):
                raise ProtocolError(f"Nextmv run list has no 'runs' array: {str(payload)[:300]}")
            runs.extend(r for r in page if isinstance(r, dict))
            token = str(payload.get("next_page_token") or "")
            if not token:
                break
        return runs

    def find_task_runs(self, app_id: str, task_marker: str) -> list[dict[str, Any]]:
        """Runs created by any try of one Airflow task instance, newest first."""
        return proto.runs_with_marker(self.list_runs(app_id), task=task_marker)

    def submit_run(
        self,
        app_id: str,
        *,
        instance_id: str | None = None,
        input: Any = None,
        input_uri: str | None = None,
        input_format: str = "json",
        name: str | None = None,
        description: str | None = None,
        options: Mapping[str, Any] | None = None,
        configuration: Mapping[str, Any] | None = None,
        task_marker: str | None = None,
    ) -> str:
        """Submit a run, inline or through a streamed upload depending on the input's size and format.

        Everything that can be checked locally (source exists, size ≤ 500 MB, JSON, options) is
        checked before the first network call; the run is created only after a complete upload.
        """
        if (input is None) == (input_uri is None):
            raise InvalidInputError("Pass exactly one of input (a dict) or input_uri (a path or URI).")
        marker = (task_marker, proto.new_submission_id()) if task_marker else None
        if marker:
            description = proto.marked_description(description, *marker)
        run_fields = dict(name=name, description=description, options=options, configuration=configuration)
        proto.stringify_options(options)  # validate before any network call
        with open_payload(input, input_uri, input_format) as (source, what):
            transfer = proto.choose_transfer(source.size, input_format)
            if transfer is proto.Transfer.INLINE:
                inline = parse_inline_json(source.fileobj.read(), what)
                body = proto.new_run_body(input=inline, input_format=input_format, **run_fields)
                self.log.info("Submitting %s inline (%s bytes) to app %s", what, f"{source.size:,}", app_id)
            else:
                upload_id = self._upload_source(app_id, source, what, input_format)
                body = proto.new_run_body(upload_id=upload_id, input_format=input_format, **run_fields)
        run_id = self.create_run(app_id, body, instance_id, marker=marker)
        self.log.info("Created Nextmv run %s (app %s): %s", run_id, app_id, self.console_url(app_id, run_id))
        return run_id

    def _upload_source(self, app_id: str, source: uris.InputSource, what: str, input_format: str) -> str:
        check = JsonShapeCheck(what) if input_format == "json" else None
        upload_id, upload_url = self.request_upload_url(app_id)
        body = StreamingBody(source.chunks(), source.size, what, on_chunk=check.feed if check else None)
        self.upload(upload_url, body)
        if check is not None:
            check.finish()
        return upload_id

    def get_run_metadata(self, app_id: str, run_id: str) -> dict[str, Any]:
        response = self._call(
            "GET", proto.run_metadata_path(app_id, run_id), idempotent=True, what="get run status"
        )
        return self._json(response, "run metadata")

    def get_run_result(self, app_id: str, run_id: str) -> dict[str, Any]:
        """GET ``/runs/{id}?format=url``: metadata plus ``error_log`` for failed runs (output as a URL)."""
        response = self._call(
            "GET", proto.run_path(app_id, run_id), idempotent=True, what="get run", params={"format": "url"}
        )
        return self._json(response, "run result")

    def cancel_run(self, app_id: str, run_id: str) -> None:
        self._call("PATCH", proto.run_cancel_path(app_id, run_id), idempotent=True, what="cancel run")
        self.log.info("Requested cancellation of Nextmv run %s", run_id)

    def get_run_logs(self, app_id: str, run_id: str) -> str:
        response = self._call(
            "GET", proto.run_logs_path(app_id, run_id), idempotent=True, what="get run logs"
        )
        payload = self._json(response, "run logs")
        return str(payload.get("log", "")) if isinstance(payload, dict) else ""

    def console_url(self, app_id: str, run_id: str) -> str:
        return proto.console_run_url(self.settings.console_url, app_id, run_id)

    # ------------------------------------------------------------------------------------ waiting
    def wait_for_run(
        self,
        app_id: str,
        run_id: str,
        *,
        deadline: float,
        poll_interval: float,
        max_poll_interval: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> NextmvRunEvent:
        """Poll until the run ends or the wall-clock ``deadline`` passes; same schedule as the trigger."""
        attempt = 0
        last = None
        while True:
            metadata = self.get_run_metadata(app_id, run_id)
            if event := event_from_metadata(app_id, run_id, metadata):
                return event
            status = proto.run_status(metadata)
            if status != last:
                self.log.info("Nextmv run %s is %s", run_id, status.value)
                last = status
            remaining = deadline - time.time()
            if remaining <= 0:
                return timeout_event(app_id, run_id, "the task's timeout")
            sleep(min(poll_delay(attempt, poll_interval, max_poll_interval), remaining))
            attempt += 1

    # ------------------------------------------------------------------------------------ output
    def download_output(
        self, app_id: str, run_id: str, output_uri: str, *, metadata: Mapping[str, Any] | None = None
    ) -> list[str]:
        """Stream a finished run's output to ``output_uri``; return the written path(s).

        Small JSON outputs come from ``/output``; large or non-JSON ones through the presigned
        ``format=url`` download, fetched without the API key. Multi-file outputs (tar.gz) are
        unpacked, guarded, into the folder ``output_uri``.
        """
        info = proto.output_info(metadata or self.get_run_metadata(app_id, run_id))
        path = proto.run_output_path(app_id, run_id)
        if info.via_url:
            payload = self._json(
                self._call("GET", path, idempotent=True, what="get output URL", params={"format": "url"}),
                "output URL",
            )
            url = proto.require_str(payload, "url", "output?format=url")
            written = write_output(self._presigned_download(url), info, run_id, output_uri)
        else:
            written = write_output(
                self._call("GET", path, idempotent=True, what="get output", stream=True),
                info,
                run_id,
                output_uri,
            )
        self.log.info(
            "Wrote the output of Nextmv run %s to %s", run_id, ", ".join(map(uris.describe, written))
        )
        return written

    def _presigned_download(self, url: str) -> requests.Response:
        def download() -> requests.Response:
            resp = self.transfer_session.get(
                url, stream=True, timeout=(self.timeout[0], TRANSFER_READ_TIMEOUT)
            )
            raise_for_status(resp, SERVICE, "GET", redact_url(url))
            return resp

        return call_with_retries(
            self.retry_policy,
            idempotent=True,
            logger=self.log,
            service=SERVICE,
            what="download output",
            fn=download,
        )

    # ------------------------------------------------------------------------------------ completion
    def finish(
        self,
        event: NextmvRunEvent,
        *,
        output_uri: str | None,
        cancel_on_timeout: bool = True,
    ) -> list[str]:
        """What operator and sensor do once a wait ends, in either mode: output, or a clear error."""
        if event.status is RunEventStatus.SUCCEEDED:
            self.log.info("Nextmv run %s succeeded", event.run_id)
            return self.download_output(event.app_id, event.run_id, output_uri) if output_uri else []
        if event.status is RunEventStatus.TIMEOUT:
            if cancel_on_timeout:
                self.cancel_best_effort(event.app_id, event.run_id)
            raise RunTimeoutError(
                f"{event.message}; " + ("it was canceled." if cancel_on_timeout else "it was left running.")
            )
        if event.status is RunEventStatus.ERROR:
            raise ServiceUnavailableError(f"Waiting for Nextmv run {event.run_id} failed: {event.message}")
        verb = "failed" if event.status is RunEventStatus.FAILED else "was canceled"
        raise RunFailedError(
            f"Nextmv run {event.run_id} (app {event.app_id}) {verb}: {event.message or 'no details given'}. "
            f"Run page: {self.console_url(event.app_id, event.run_id)}"
        )

    def cancel_best_effort(self, app_id: str, run_id: str) -> None:
        try:
            self.cancel_run(app_id, run_id)
        except Exception as exc:  # cancel is best effort: report, never mask the original outcome
            self.log.warning("Could not cancel Nextmv run %s: %s", run_id, exc)

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", "v1/applications", idempotent=True, what="list applications")
        except Exception as exc:
            return False, str(exc)
        return True, f"Connected to Nextmv Cloud at {self.settings.endpoint}"


# ---------------------------------------------------------------------------------------------- helpers
