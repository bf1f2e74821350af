"""The one presigned PUT and the one presigned GET of the sync hooks (Nextmv uploads and outputs,
NVCF assets and large results; the trigger uses the GET through a worker thread).

A presigned URL *is* the credential, so these calls go through a session that never carries the
API key (not even through a redirect), log the URL without its query string, and are bounded in
total time. Neither restarts a broken transfer itself: a new try needs a new URL (or asset), which
only the caller can get — see :func:`airflow_provider.utils.retry.restarting`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from airflow_provider.utils import uris
from airflow_provider.utils.http import (
    TRANSFER_READ_TIMEOUT,
    TRANSFER_TOTAL_TIMEOUT,
    Timeouts,
    answer_or_raise,
)
from airflow_provider.utils.payloads import StreamingBody
from airflow_provider.utils.redact import redact_url
from airflow_provider.utils.sync_http import (
    STREAM_ERRORS,
    CallWatch,
    SyncApi,
    read_bounded,
    transport_error,
)

T = TypeVar("T")


def transfer_timeouts(connect: float) -> Timeouts:
    """Timeouts of presigned transfers: the API's connect timeout, a long read and total bound."""
    return Timeouts(connect, TRANSFER_READ_TIMEOUT, TRANSFER_TOTAL_TIMEOUT)


def transfer_total(deadline: float | None = None) -> float:
    """A transfer's total time bound: :data:`TRANSFER_TOTAL_TIMEOUT`, or less when a deadline is nearer."""
    if deadline is None:
        return TRANSFER_TOTAL_TIMEOUT
    return max(1.0, min(TRANSFER_TOTAL_TIMEOUT, deadline - time.time()))


class PresignedTransfers:
    """Presigned uploads and downloads over a credential-free :class:`SyncApi` (a composed helper:
    it needs nothing back from the hook that owns it). Build its API with :func:`transfer_timeouts`."""

    def __init__(self, api: SyncApi) -> None:
        self.api = api

    def put(
        self,
        url: str,
        body: StreamingBody,
        *,
        headers: Mapping[str, str],
        what: str,
        deadline: float | None = None,
    ) -> None:
        """PUT a streaming body with an exact Content-Length (``len(body)``); errors name no signature."""
        log = self.api.logger
        log.info("Uploading %s (%s bytes) to %s", body.what, f"{body.size:,}", redact_url(url))
        started = time.monotonic()
        try:
            with CallWatch(transfer_total(deadline), f"{self.api.service} {what}"):
                response = self.api.session.put(
                    url,
                    data=body,
                    headers=dict(headers),
                    stream=True,
                    timeout=(self.api.timeouts.connect, self.api.timeouts.read),
                )
                with contextlib.closing(response):
                    reply = read_bounded(response, 64 * 1024, self.api.service, what)
        except STREAM_ERRORS as exc:
            raise transport_error(self.api.service, what, exc) from exc
        if response.status_code >= 400:
            answer_or_raise(
                response.status_code,
                response.headers,
                reply,
                service=self.api.service,
                method="PUT",
                target=redact_url(url),
                what=what,
            )
        elapsed = max(time.monotonic() - started, 1e-6)
        log.info(
            "Uploaded %s bytes in %.1fs (%.1f MB/s)", f"{body.sent:,}", elapsed, body.sent / elapsed / 1e6
        )

    def get(
        self,
        url: str,
        sink: Callable[[Iterator[bytes]], T],
        *,
        what: str,
        deadline: float | None = None,
    ) -> T:
        """GET ``url`` without credentials and hand its body, in chunks, to ``sink`` (see
        :meth:`SyncApi.download`); bounded by :func:`transfer_total`."""
        return self.api.download(url, sink, what=what, total=transfer_total(deadline))


def file_chunks(path: str, chunk_size: int = uris.CHUNK_SIZE) -> Iterator[bytes]:
    """A local file as chunks, closed when the iteration ends (an upload body's source)."""
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk
