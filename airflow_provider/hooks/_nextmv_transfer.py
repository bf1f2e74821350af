"""The transfer half of :class:`~airflow_provider.hooks.nextmv.NextmvHook`: submit with upload, fetch output.

A mixin so the hook stays one class for users while each module keeps one concern: this one moves
payloads (streamed presigned uploads and downloads, restarted from scratch when a transfer breaks)
and creates runs without ever submitting one twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider.exceptions import (
    InvalidInputError,
    MalformedResponseError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks._nextmv_payload import open_payload, parse_inline_json, write_output
from airflow_provider.protocol import nextmv as proto
from airflow_provider.utils import uris
from airflow_provider.utils.http import TRANSFER_READ_TIMEOUT
from airflow_provider.utils.payloads import JsonShapeCheck, StreamingBody
from airflow_provider.utils.redact import redact_url
from airflow_provider.utils.retry import TRANSFER_ATTEMPTS, is_ambiguous, is_transfer_retryable
from airflow_provider.utils.sync_http import (
    STREAM_ERRORS,
    call_with_retries,
    raise_for_status,
    transfer_error,
)

if TYPE_CHECKING:
    import logging

    from airflow_provider.utils.retry import RetryPolicy

SERVICE = "Nextmv Cloud"


class NextmvTransfers:
    """Submission and output transfer methods of :class:`~airflow_provider.hooks.nextmv.NextmvHook`."""

    if TYPE_CHECKING:
        log: logging.Logger
        timeout: tuple[float, float]
        retry_policy: RetryPolicy
        transfer_session: requests.Session

        def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response: ...
        def _call_json(self, method: str, path: str, **kwargs: Any) -> Any: ...
        def list_runs(self, app_id: str, *, max_pages: int = 5) -> list[dict[str, Any]]: ...
        def get_run_metadata(self, app_id: str, run_id: str) -> dict[str, Any]: ...
        def console_url(self, app_id: str, run_id: str) -> str: ...

    def request_upload_url(self, app_id: str) -> tuple[str, str]:
        """POST ``/runs/uploadurl`` → (upload_id, presigned upload URL)."""
        payload = self._call_json(
            "POST", proto.upload_url_path(app_id), idempotent=True, what="request upload URL"
        )
        return proto.require_str(payload, "upload_id", "uploadurl"), proto.require_str(
            payload, "upload_url", "uploadurl"
        )

    def upload(self, upload_url: str, body: StreamingBody) -> None:
        """PUT a streaming body to a presigned URL, without the API key, with an exact Content-Length."""
        self.log.info("Uploading %s (%s bytes) to %s", body.what, f"{body.size:,}", redact_url(upload_url))
        started = time.monotonic()
        try:
            response = self.transfer_session.put(
                upload_url,
                data=body,
                headers={"Content-Type": "application/octet-stream"},
                timeout=(self.timeout[0], TRANSFER_READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise transfer_error(SERVICE, "upload", exc) from exc
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
            payload = self._call_json(
                "POST",
                proto.runs_path(app_id),
                idempotent=False,
                what="create run",
                params=params,
                json_body=body,
            )
            return proto.require_str(payload, "run_id", "new run")

        try:
            return post()
        except (ServiceHTTPError, ServiceUnavailableError, MalformedResponseError) as exc:
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
        """Stream ``source`` to a fresh presigned URL; a failed or expired transfer restarts from the
        source's first byte with a new URL (bounded attempts)."""
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
            source.rewind()
            check = JsonShapeCheck(what) if input_format == "json" else None
            upload_id, upload_url = self.request_upload_url(app_id)
            body = StreamingBody(source.chunks(), source.size, what, on_chunk=check.feed if check else None)
            try:
                self.upload(upload_url, body)
            except (ServiceHTTPError, ServiceUnavailableError) as exc:
                if attempt == TRANSFER_ATTEMPTS or not is_transfer_retryable(exc):
                    raise
                self.log.warning(
                    "Upload attempt %d/%d failed (%s); restarting from the source with a new upload URL",
                    attempt,
                    TRANSFER_ATTEMPTS,
                    exc,
                )
                continue
            if check is not None:
                check.finish()
            return upload_id
        raise AssertionError("unreachable")  # pragma: no cover

    def download_output(
        self, app_id: str, run_id: str, output_uri: str, *, metadata: Mapping[str, Any] | None = None
    ) -> list[str]:
        """Stream a finished run's output to ``output_uri``; return the written path(s).

        Small JSON outputs come from ``/output``; large or non-JSON ones through the presigned
        ``format=url`` download, fetched without the API key. Multi-file outputs (tar.gz) are
        unpacked, guarded, into the folder ``output_uri``. A transfer that breaks (reset, expired
        URL) restarts from scratch with a new URL; files appear only once complete.
        """
        info = proto.output_info(metadata or self.get_run_metadata(app_id, run_id))
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
            try:
                written = write_output(self._open_output(app_id, run_id, info), info, run_id, output_uri)
                break
            except STREAM_ERRORS as exc:
                failure: Exception = transfer_error(SERVICE, "output download", exc)
            except (ServiceHTTPError, ServiceUnavailableError, MalformedResponseError) as exc:
                failure = exc
            if attempt == TRANSFER_ATTEMPTS or not is_transfer_retryable(failure):
                raise failure
            self.log.warning(
                "Output download attempt %d/%d failed (%s); restarting", attempt, TRANSFER_ATTEMPTS, failure
            )
        self.log.info(
            "Wrote the output of Nextmv run %s to %s", run_id, ", ".join(map(uris.describe, written))
        )
        return written

    def _open_output(self, app_id: str, run_id: str, info: proto.OutputInfo) -> requests.Response:
        path = proto.run_output_path(app_id, run_id)
        if not info.via_url:
            return self._call("GET", path, idempotent=True, what="get output", stream=True)
        payload = self._call_json(
            "GET", path, idempotent=True, what="get output URL", params={"format": "url"}
        )
        return self._presigned_download(proto.require_str(payload, "url", "output?format=url"))

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
