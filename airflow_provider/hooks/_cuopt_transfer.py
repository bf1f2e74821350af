"""The transfer half of :class:`~airflow_provider.hooks.cuopt.CuOptHook`: assets in, results out.

Assets are streamed from a staged, zlib-compressed file to their presigned URL (a failed or
expired upload is retried with a new asset, the broken one deleted); large results are downloaded
from their presigned zip URL without credentials and stored through ``_cuopt_results``, downloaded
again if they arrive damaged.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider.exceptions import (
    MalformedResponseError,
    ProtocolError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.hooks._cuopt_payload import PreparedProblem
from airflow_provider.hooks._cuopt_results import StoredResult, store_inline_result, store_zip_result
from airflow_provider.protocol import cuopt as proto
from airflow_provider.utils import uris
from airflow_provider.utils.http import TRANSFER_READ_TIMEOUT, Answer
from airflow_provider.utils.payloads import StreamingBody
from airflow_provider.utils.redact import redact_url
from airflow_provider.utils.retry import TRANSFER_ATTEMPTS, is_transfer_retryable
from airflow_provider.utils.sync_http import call_with_retries, raise_for_status, transfer_error

if TYPE_CHECKING:
    import logging

    from airflow_provider.utils.retry import RetryPolicy

SERVICE = "NVCF"


class CuOptTransfers:
    """Asset and result transfer methods of :class:`~airflow_provider.hooks.cuopt.CuOptHook`."""

    if TYPE_CHECKING:
        log: logging.Logger
        timeout: tuple[float, float]
        retry_policy: RetryPolicy
        transfer_session: requests.Session

        def _call(self, method: str, path: str, **kwargs: Any) -> Answer: ...
        def invoke(self, function: tuple[str, str], body: Any, poll_seconds: int) -> proto.Invocation: ...

    def create_asset(self) -> tuple[str, str]:
        body = {"contentType": proto.ASSET_CONTENT_TYPE, "description": proto.ASSET_DESCRIPTION}
        payload = self._call(
            "POST", proto.ASSETS_PATH, idempotent=False, what="create asset", json_body=body
        ).payload
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
            try:
                response = self.transfer_session.put(
                    upload_url, data=body, headers=headers, timeout=(self.timeout[0], TRANSFER_READ_TIMEOUT)
                )
            except requests.RequestException as exc:
                raise transfer_error(SERVICE, "asset upload", exc) from exc
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
        asset_id = self._stage_asset(prepared, on_asset) if prepared.is_asset else None
        body = proto.invoke_body(
            data=prepared.data, asset_id=asset_id, poll_seconds=poll_seconds, action=action
        )
        return self.invoke(function, body, poll_seconds), asset_id

    def _stage_asset(self, prepared: PreparedProblem, on_asset: Callable[[str], None] | None) -> str:
        """Create an asset and stream the staged file to it; a failed or expired upload is retried
        from the file's first byte with a new asset (the broken one is deleted)."""
        assert prepared.asset_path is not None
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
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
            try:
                self.upload_asset(upload_url, prepared.asset_path, prepared.asset_size, prepared.what)
                return asset_id
            except (ServiceHTTPError, ServiceUnavailableError) as exc:
                self.delete_asset_best_effort(asset_id)
                if attempt == TRANSFER_ATTEMPTS or not is_transfer_retryable(exc):
                    raise
                self.log.warning(
                    "Asset upload attempt %d/%d failed (%s); retrying with a new asset",
                    attempt,
                    TRANSFER_ATTEMPTS,
                    exc,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def store_result(self, invocation: proto.Invocation, output_uri: str) -> StoredResult:
        """Persist a fulfilled request's result at ``output_uri`` (inline JSON or the large-result zip)."""
        if invocation.response_reference is None:
            return store_inline_result(invocation.response, output_uri, invocation.req_id)
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
            with self._downloaded(invocation.response_reference) as zip_path:
                try:
                    return store_zip_result(zip_path, output_uri, invocation.req_id)
                except MalformedResponseError as exc:  # damaged in transit: the URL stays valid for 24 h
                    if attempt == TRANSFER_ATTEMPTS:
                        raise
                    self.log.warning("Large result download was damaged (%s); downloading it again", exc)
        raise AssertionError("unreachable")  # pragma: no cover

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
