"""The requests side of the hooks' HTTP plumbing, shared by the Nextmv and cuOpt sync hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from airflow_provider.exceptions import ServiceHTTPError, ServiceUnavailableError
from airflow_provider.utils.http import error_detail, parse_retry_after
from airflow_provider.utils.redact import redact_text
from airflow_provider.utils.retry import RetryPolicy, sync_retrying

T = TypeVar("T")


def raise_for_status(response: requests.Response, service: str, method: str, target: str) -> None:
    """HTTP errors become :class:`ServiceHTTPError` with the service's own words (``target`` is pre-redacted)."""
    if response.status_code < 400:
        return
    try:
        body = response.content
    except requests.RequestException:
        body = b""
    raise ServiceHTTPError(
        service,
        method,
        target,
        response.status_code,
        error_detail(body),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def call_with_retries(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    logger: logging.Logger | Any,
    service: str,
    what: str,
    fn: Callable[[], T],
) -> T:
    """Run ``fn`` under the shared retry policy; transport errors that survive it become
    :class:`ServiceUnavailableError` with URLs redacted (requests quotes presigned URLs in messages)."""
    try:
        for attempt in sync_retrying(policy, idempotent=idempotent, logger=logger, what=f"{service} {what}"):
            with attempt:
                return fn()
    except requests.RequestException as exc:
        raise ServiceUnavailableError(
            f"{service} {what} failed: {type(exc).__name__}: {redact_text(str(exc), 500)}"
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def transfer_error(service: str, what: str, exc: BaseException) -> ServiceUnavailableError:
    """A transport failure of a presigned transfer, with every URL in the message redacted."""
    return ServiceUnavailableError(
        f"{service} {what} failed: {type(exc).__name__}: {redact_text(str(exc), 500)}"
    )


#: What a streamed presigned transfer can raise mid-body (requests wraps only some of it).
STREAM_ERRORS: tuple[type[BaseException], ...] = (requests.RequestException, OSError)
try:  # urllib3 raises its own errors when the raw body is read directly
    from urllib3.exceptions import HTTPError as _Urllib3Error

    STREAM_ERRORS = (*STREAM_ERRORS, _Urllib3Error)
except ImportError:  # pragma: no cover
    pass
