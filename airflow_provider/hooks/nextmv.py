"""Synchronous Nextmv Cloud hook (requests), used on workers: submit with upload, wait, fetch output.

The protocol (paths, size decisions, statuses, bodies) lives in :mod:`airflow_provider.protocol.nextmv`;
payload staging and output writing in :mod:`airflow_provider.hooks.nextmv_payloads`; HTTP in the
composed helpers of :class:`~airflow_provider.hooks.base.ServiceHook`. This class is the I/O between:
the API session carries the ``Authorization`` header, the transfer session used for presigned URLs
never does, so the API key cannot leak to a storage host even through a redirect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import Any

from airflow_provider.events.nextmv import NextmvRunEvent, event_from_metadata, timeout_event
from airflow_provider.exceptions import (
    MalformedResponseError,
    ProtocolError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks.base import ServiceHook
from airflow_provider.hooks.nextmv_outcome import finish_run
from airflow_provider.hooks.nextmv_payloads import inline_input, open_payload, write_output
from airflow_provider.protocol import nextmv as proto
from airflow_provider.protocol import rules
from airflow_provider.utils import uris
from airflow_provider.utils.payloads import JsonShapeCheck, StreamingBody
from airflow_provider.utils.polling import poll_delay
from airflow_provider.utils.presigned import transfer_total
from airflow_provider.utils.redact import mask_secrets
from airflow_provider.utils.remote_logs import log_remote_text
from airflow_provider.utils.retry import is_ambiguous, restarting

SERVICE = "Nextmv Cloud"


class NextmvHook(ServiceHook):
    """Talks to the Nextmv Cloud API with an API key.

    Connection (type ``nextmv``): *password* = API key; *host* = API endpoint (default
    ``https://api.cloud.nextmv.io``; a local emulator works, e.g. ``http://127.0.0.1:8765``);
    extras ``console_url``, ``verify_ssl`` (default true), ``ca_bundle``.

    :param nextmv_conn_id: Airflow connection id.
    :param kwargs: ``retry_policy``, bounds of the retry loop for transient errors (429, 5xx,
        network), and ``timeout``, (connect, read) seconds or a
        :class:`~airflow_provider.utils.http.Timeouts`.
    """

    conn_name_attr = "nextmv_conn_id"
    default_conn_name = "nextmv_default"
    conn_type = "nextmv"
    hook_name = "Nextmv Cloud"
    service = SERVICE

    def __init__(self, nextmv_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nextmv_conn_id = nextmv_conn_id

    @cached_property
    def settings(self) -> proto.NextmvSettings:
        """The connection, resolved once (the API key is registered with the secrets masker)."""
        conn = self.get_connection(self.nextmv_conn_id)
        settings = proto.NextmvSettings.from_connection(conn.host, conn.password, conn.extra_dejson)
        mask_secrets(settings.api_key)
        return settings

    def api_headers(self) -> dict[str, str]:
        """The API key and JSON content types, on every API call."""
        return self.settings.headers

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        what: str,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        deadline: float | None = None,
    ) -> Any:
        """One API call (see :meth:`SyncApi.call`); returns the parsed JSON payload."""
        return self.call_api(
            method, path, what=what, idempotent=idempotent, params=params, data=body, deadline=deadline
        ).payload

    # ------------------------------------------------------------------------------------ runs
    def list_runs(self, app_id: str, *, max_pages: int = 5) -> list[dict[str, Any]]:
        """GET ``/runs`` (``pagereturn=true`` pages), at most ``max_pages`` pages."""
        runs: list[dict[str, Any]] = []
        token = ""
        for _ in range(max_pages):
            params = {"pagereturn": "true", **({"pagetoken": token} if token else {})}
            payload = self._call(
                "GET", proto.runs_path(app_id), idempotent=True, what="list runs", params=params
            )
            page = payload.get("runs") if isinstance(payload, dict) else None
            if not isinstance(page, list):
                raise ProtocolError(f"Nextmv run list has no 'runs' array: {str(payload)[:300]}")
            runs.extend(r for r in page if isinstance(r, dict))
            token = payload.get("next_page_token") or ""
            if not isinstance(token, str) or not token:
                break
        return runs

    def find_task_runs(self, app_id: str, task_marker: str) -> list[dict[str, Any]]:
        """Runs created by any try of one Airflow task instance, newest first."""
        return proto.runs_with_marker(self.list_runs(app_id), task=task_marker)

    def get_run_metadata(self, app_id: str, run_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """GET ``/runs/{id}/metadata``: the run's status, format, sizes and error (a wait's ``deadline``
        bounds the call too)."""
        path = proto.run_metadata_path(app_id, run_id)
        return self._call("GET", path, idempotent=True, what="get run status", deadline=deadline)

    def get_run_result(self, app_id: str, run_id: str) -> dict[str, Any]:
        """GET ``/runs/{id}?format=url``: metadata plus ``error_log`` for failed runs (output as a URL)."""
        path = proto.run_path(app_id, run_id)
        return self._call("GET", path, idempotent=True, what="get run", params={"format": "url"})

    def cancel_run(self, app_id: str, run_id: str) -> None:
        """PATCH ``/runs/{id}/cancel``: ask Nextmv to stop the run."""
        self._call("PATCH", proto.run_cancel_path(app_id, run_id), idempotent=True, what="cancel run")
        self.log.info("Requested cancellation of Nextmv run %s", run_id)

    def get_run_logs(self, app_id: str, run_id: str) -> str:
        """GET ``/runs/{id}/logs``: what the app wrote to stderr, as one string."""
        payload = self._call("GET", proto.run_logs_path(app_id, run_id), idempotent=True, what="get run logs")
        log = payload.get("log", "") if isinstance(payload, dict) else ""
        return log if isinstance(log, str) else ""

    def console_url(self, app_id: str, run_id: str) -> str:
        """The run's page in the Nextmv console."""
        return proto.console_run_url(self.settings.console_url, app_id, run_id)

    # ------------------------------------------------------------------------------------ submission
    def request_upload_url(self, app_id: str) -> tuple[str, str]:
        """POST ``/runs/uploadurl`` → (upload_id, presigned upload URL)."""
        payload = self._call(
            "POST", proto.upload_url_path(app_id), idempotent=True, what="request upload URL"
        )
        return proto.require_str(payload, "upload_id", "uploadurl"), proto.require_str(
            payload, "upload_url", "uploadurl"
        )

    def create_run(
        self,
        app_id: str,
        body: bytes,
        instance_id: str | None = None,
        *,
        marker: tuple[str, str] | None = None,
    ) -> str:
        """POST ``/runs`` with an already serialised body. Never blindly re-sent: after an ambiguous
        failure (response lost, 500/502/504) the run list is searched for this submission's ``marker``
        (task, submission) first; the run is adopted if it exists, the request re-sent once if it
        provably does not."""
        params = {"instance_id": instance_id} if instance_id else None

        def post() -> str:
            payload = self._call(
                "POST", proto.runs_path(app_id), idempotent=False, what="create run", params=params, body=body
            )
            return proto.require_id(payload, "run_id", "create run")

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
            except (ServiceHTTPError, ServiceUnavailableError, MalformedResponseError) as exc:
                self.log.warning("Listing runs to resolve the ambiguous submission failed: %s", exc)
                continue  # the service is still unwell: try again, then give up
            if found:
                return found[0]["id"]
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
        Returns the run id.
        """
        rules.exactly_one(("input", input), ("input_uri", input_uri), "a dict, or a path or URI")
        marker = (task_marker, proto.new_submission_id()) if task_marker else None
        if marker:
            description = proto.marked_description(description, *marker)
        fields = dict(name=name, description=description, options=options, configuration=configuration)
        proto.stringify_options(options)  # validate before any network call
        with open_payload(input, input_uri, input_format) as (source, what):
            if (inline := inline_input(source, input_format, what)) is not None:
                body = proto.run_body(input_json=inline, input_format=input_format, **fields)
                self.log.info("Submitting %s inline (%s bytes) to app %s", what, f"{len(inline):,}", app_id)
            else:
                upload_id = self._upload_source(app_id, source, what, input_format)
                body = proto.run_body(upload_id=upload_id, input_format=input_format, **fields)
        run_id = self.create_run(app_id, body, instance_id, marker=marker)
        self.log.info("Created Nextmv run %s (app %s): %s", run_id, app_id, self.console_url(app_id, run_id))
        return run_id

    def _upload_source(self, app_id: str, source: uris.InputSource, what: str, input_format: str) -> str:
        """Stream ``source`` to a fresh presigned URL; a failed or expired transfer restarts from the
        source's first byte with a new URL (bounded attempts)."""

        def attempt(_: int) -> str:
            source.rewind()
            check = JsonShapeCheck(what) if input_format == "json" else None
            upload_id, upload_url = self.request_upload_url(app_id)
            body = StreamingBody(source.chunks(), source.size, what, on_chunk=check.feed if check else None)
            self.transfers.put(
                upload_url, body, headers={"Content-Type": "application/octet-stream"}, what="upload"
            )
            if check is not None:
                check.finish()
            return upload_id

        return restarting(f"{SERVICE} upload of {what}", attempt, logger=self.log)

    # ------------------------------------------------------------------------------------ output
    def download_output(
        self,
        app_id: str,
        run_id: str,
        output_uri: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> list[str]:
        """Stream a finished run's output to ``output_uri``; return the written path(s).

        Small JSON outputs come from ``/output``; large or non-JSON ones through the presigned
        ``format=url`` download, fetched without the API key. Multi-file outputs (tar.gz) are
        unpacked, guarded, into the folder ``output_uri``. A transfer that breaks (reset, expired
        URL) restarts from scratch with a new URL; files appear only once complete.
        """
        info = proto.output_info(metadata or self.get_run_metadata(app_id, run_id))
        path = proto.run_output_path(app_id, run_id)

        def sink(chunks: Iterator[bytes]) -> list[str]:
            return write_output(chunks, info, run_id, output_uri)

        def attempt(_: int) -> list[str]:
            if not info.via_url:
                url, total = self.settings.url(path), transfer_total(deadline)
                return self.api.download(url, sink, what="get output", total=total)
            payload = self._call(
                "GET", path, idempotent=True, what="get output URL", params={"format": "url"}
            )
            url = proto.require_str(payload, "url", "output?format=url")
            return self.transfers.get(url, sink, what="download output", deadline=deadline)

        written = restarting(f"{SERVICE} output download", attempt, logger=self.log)
        self.log.info(
            "Wrote the output of Nextmv run %s to %s", run_id, ", ".join(map(uris.describe, written))
        )
        return written

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
        """Poll until the run ends or the wall-clock ``deadline`` passes (also during a slow call);
        the same schedule and the same events as the trigger."""
        attempt = 0
        last = None
        while True:
            if time.time() >= deadline:
                return timeout_event(app_id, run_id, "the task's timeout")
            try:
                metadata = self.get_run_metadata(app_id, run_id, deadline=deadline)
            except (ServiceUnavailableError, ServiceHTTPError, ProtocolError):
                if time.time() >= deadline:  # the call was cut at the deadline: that is the timeout
                    return timeout_event(app_id, run_id, "the task's timeout")
                raise
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

    # ------------------------------------------------------------------------------------ completion
    def log_run_log(self, app_id: str, run_id: str, max_bytes: int) -> None:
        """Copy the run's log (``GET /runs/{id}/logs``: what the app wrote to stderr) into the task
        log: its last ``max_bytes`` bytes, redacted. Best effort: a log that cannot be had is a warning,
        never the task's outcome."""
        if max_bytes <= 0:
            return
        try:
            text = self.get_run_logs(app_id, run_id)
        except Exception as exc:
            self.log.warning("Could not fetch the log of Nextmv run %s: %s", run_id, exc)
            return
        log_remote_text(self.log, f"Nextmv run log of {run_id}", text, max_bytes)

    #: What operator and sensor do once a wait ends, in either mode (the one completion path:
    #: :func:`~airflow_provider.hooks.nextmv_outcome.finish_run`).
    finish = finish_run

    def cancel_best_effort(self, app_id: str, run_id: str) -> None:
        """Cancel, reporting (never raising) a failure: it must not mask the task's own outcome."""
        try:
            self.cancel_run(app_id, run_id)
        except Exception as exc:
            self.log.warning("Could not cancel Nextmv run %s: %s", run_id, exc)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's *Test* button: list the applications the API key can see."""
        try:
            self._call("GET", "v1/applications", idempotent=True, what="list applications")
        except Exception as exc:
            return False, str(exc)
        return True, f"Connected to Nextmv Cloud at {self.settings.endpoint}"
