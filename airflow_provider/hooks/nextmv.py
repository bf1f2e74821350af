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

from airflow_provider.events.nextmv import NextmvRunEvent, RunEventStatus, event_from_metadata, timeout_event
from airflow_provider.exceptions import (
    ProtocolError,
    RunFailedError,
    RunTimeoutError,
    ServiceUnavailableError,
)
from airflow_provider.hooks._base import ServiceHook
from airflow_provider.hooks._nextmv_transfer import SERVICE, NextmvTransfers
from airflow_provider.protocol import nextmv as proto
from airflow_provider.utils.polling import poll_delay
from airflow_provider.utils.redact import mask_secrets
from airflow_provider.utils.sync_http import (
    call_with_retries,
    raise_for_status,
)


class NextmvHook(NextmvTransfers, ServiceHook):
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

    def __init__(self, nextmv_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nextmv_conn_id = nextmv_conn_id

    @cached_property
    def settings(self) -> proto.NextmvSettings:
        conn = self.get_connection(self.nextmv_conn_id)
        settings = proto.NextmvSettings.from_connection(conn.host, conn.password, conn.extra_dejson)
        mask_secrets(settings.api_key)
        return settings

    def api_headers(self) -> dict[str, Any]:
        return self.settings.headers  # the API key, on every API call

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
        stream: bool = False,
        parse: bool = False,
    ) -> Any:
        """One API call with the shared retry policy; HTTP errors become :class:`ServiceHTTPError`.

        With ``parse`` the JSON body is returned, parsed inside the retry loop: a garbled answer is
        retried for reads and counts as an ambiguous failure for creates.
        """
        url = self.settings.url(path)

        def attempt() -> Any:
            response = self.session.request(
                method, url, params=params, json=json_body, timeout=self.timeout, stream=stream
            )
            raise_for_status(response, SERVICE, method, f"/{path}")
            return proto.parse_json_body(response.content, what) if parse else response

        return call_with_retries(
            self.retry_policy, idempotent=idempotent, logger=self.log, service=SERVICE, what=what, fn=attempt
        )

    def _call_json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, parse=True, **kwargs)

    # ------------------------------------------------------------------------------------ runs
    def list_runs(self, app_id: str, *, max_pages: int = 5) -> list[dict[str, Any]]:
        """GET ``/runs`` (``pagereturn=true`` pages), at most ``max_pages`` pages."""
        runs: list[dict[str, Any]] = []
        token = ""
        for _ in range(max_pages):
            params = {"pagereturn": "true", **({"pagetoken": token} if token else {})}
            payload = self._call_json(
                "GET", proto.runs_path(app_id), idempotent=True, what="list runs", params=params
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

    def get_run_metadata(self, app_id: str, run_id: str) -> dict[str, Any]:
        return self._call_json(
            "GET", proto.run_metadata_path(app_id, run_id), idempotent=True, what="get run status"
        )

    def get_run_result(self, app_id: str, run_id: str) -> dict[str, Any]:
        """GET ``/runs/{id}?format=url``: metadata plus ``error_log`` for failed runs (output as a URL)."""
        return self._call_json(
            "GET", proto.run_path(app_id, run_id), idempotent=True, what="get run", params={"format": "url"}
        )

    def cancel_run(self, app_id: str, run_id: str) -> None:
        self._call("PATCH", proto.run_cancel_path(app_id, run_id), idempotent=True, what="cancel run")
        self.log.info("Requested cancellation of Nextmv run %s", run_id)

    def get_run_logs(self, app_id: str, run_id: str) -> str:
        payload = self._call_json(
            "GET", proto.run_logs_path(app_id, run_id), idempotent=True, what="get run logs"
        )
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
