"""One retry policy for the sync and the async hooks (tenacity).

What is retried: HTTP 429 (honouring ``Retry-After``) and 5xx, connection errors and timeouts,
bounded both in attempts and in elapsed time. What is *not* blindly retried: a non-idempotent
request (one that creates a run, an invocation or an asset) after a failure that leaves it unclear
whether the server acted on it: a read timeout, a dropped connection after the request was sent,
or a 500/502/504. Re-sending those could start a duplicate solve; the caller decides instead
(see the hooks' submit paths). A request that provably never reached the service (connection
refused, connect timeout) and a 429/503 answer (rejected before processing) are safe to re-send.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from airflow_provider.exceptions import (
    CallTimeoutError,
    MalformedResponseError,
    ServiceHTTPError,
    ServiceUnavailableError,
)
from airflow_provider.utils.redact import redact_text

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: Statuses meaning "not processed": safe to re-send even a non-idempotent request.
NOT_PROCESSED_STATUS = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop; plain numbers so triggers can carry them as kwargs."""

    max_attempts: int = 6
    max_elapsed: float = 180.0
    initial_wait: float = 1.0
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


DEFAULT_POLICY = RetryPolicy()


def _request_never_sent(exc: BaseException) -> bool:
    """True when the error proves the request never reached the server."""
    try:
        import requests
        from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    except ImportError:  # pragma: no cover
        requests = None  # type: ignore[assignment]
    if requests is not None:
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return True
        if isinstance(exc, requests.exceptions.ConnectionError):
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            return isinstance(reason, (NewConnectionError, ConnectTimeoutError))
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


def is_certificate_error(exc: BaseException) -> bool:
    """A refused TLS certificate (anywhere in the cause chain): configuration, never transient."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        try:
            import aiohttp

            if isinstance(current, aiohttp.ClientConnectorCertificateError):
                return True
        except ImportError:  # pragma: no cover
            pass
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and id(reason) not in seen:
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException) and id(a) not in seen), None)
        current = nested or current.__cause__ or current.__context__
    return False


def _transient_transport_error(exc: BaseException) -> bool:
    """Connection resets, timeouts, truncated bodies: worth another try for idempotent requests."""
    import requests

    if isinstance(exc, CallTimeoutError):
        return True

    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return True
    import aiohttp

    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError))


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """The single retry predicate of both hooks."""
    if is_certificate_error(exc):
        return False
    if isinstance(exc, ServiceHTTPError):
        if idempotent:
            return exc.status_code in RETRYABLE_STATUS
        return exc.status_code in NOT_PROCESSED_STATUS
    if _request_never_sent(exc):
        return True
    return idempotent and (_transient_transport_error(exc) or isinstance(exc, MalformedResponseError))


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    """Honour ``Retry-After`` when the service sent one (capped), else exponential backoff + jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = tenacity.wait_exponential_jitter(
            multiplier=policy.initial_wait, max=policy.max_wait, jitter=min(1.0, policy.initial_wait)
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.policy.max_wait)
        return self.backoff(retry_state)


def _retry_kwargs(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    logger: logging.Logger,
    what: str,
    deadline: float | None = None,
) -> dict[str, Any]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        # One line per retry, WARNING so it is visible; bounded by max_attempts, so it cannot flood.
        logger.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.1fs",
            what,
            state.attempt_number,
            policy.max_attempts,
            short_error(exc),
            wait,
        )

    stop = tenacity.stop_after_attempt(policy.max_attempts) | tenacity.stop_after_delay(policy.max_elapsed)
    if deadline is not None:  # a wait's own deadline also ends the retries (wall clock, like triggers)
        stop = stop | _stop_at(deadline)
    return {
        "stop": stop,
        "wait": _WaitRetryAfterOrBackoff(policy),
        "retry": tenacity.retry_if_exception(lambda e: is_retryable(e, idempotent=idempotent)),
        "before_sleep": before_sleep,
        "reraise": True,
    }


def _stop_at(deadline: float) -> tenacity.stop.stop_base:
    class _StopAtDeadline(tenacity.stop.stop_base):
        def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
            return time.time() >= deadline

    return _StopAtDeadline()


def short_error(exc: BaseException | None) -> str:
    """``Type: message`` of an exception, redacted and bounded: the form every log line uses."""
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {text}", 400)


def sync_retrying(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    logger: logging.Logger,
    what: str,
    sleep: Callable | None = None,
    deadline: float | None = None,
) -> tenacity.Retrying:
    """The tenacity loop of the sync hooks (see :func:`is_retryable`); ``deadline`` is wall-clock."""
    kwargs = _retry_kwargs(policy, idempotent=idempotent, logger=logger, what=what, deadline=deadline)
    if sleep is not None:
        kwargs["sleep"] = sleep
    return tenacity.Retrying(**kwargs)


def async_retrying(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    logger: logging.Logger,
    what: str,
    deadline: float | None = None,
) -> tenacity.AsyncRetrying:
    """The same loop for the async hooks."""
    return tenacity.AsyncRetrying(
        **_retry_kwargs(policy, idempotent=idempotent, logger=logger, what=what, deadline=deadline)
    )


def is_ambiguous(exc: BaseException) -> bool:
    """A failure that leaves unknown whether a non-idempotent request took effect.

    Exactly the failures worth retrying for a read but not for a create: the request may have
    been processed (lost response, reset after sending, 500/502/504).
    """
    # ServiceUnavailableError wraps the transport error that decides it
    cause = exc.__cause__ if isinstance(exc, ServiceUnavailableError) and exc.__cause__ is not None else exc
    return is_retryable(cause, idempotent=True) and not is_retryable(cause, idempotent=False)


#: Whole-transfer attempts (presigned upload/download), each restarted from the beginning.
TRANSFER_ATTEMPTS = 3


def is_transfer_retryable(exc: BaseException) -> bool:
    """Worth restarting a presigned upload/download from scratch (with a fresh URL)?

    Transport failures mid-stream, 5xx/429/408, and 403: presigned URLs answer 403 when they have
    expired, which a new URL cures. Anything about the payload itself (InvalidInputError...) is not.
    """
    if is_certificate_error(exc):
        return False
    if isinstance(exc, ServiceHTTPError):
        return exc.status_code in RETRYABLE_STATUS | {403, 408}
    return isinstance(exc, (ServiceUnavailableError, MalformedResponseError))


def restarting(
    what: str,
    attempt: Callable[[int], T],
    *,
    logger: logging.Logger | Any,
    attempts: int = TRANSFER_ATTEMPTS,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """The one restart-from-scratch loop of presigned transfers (each try gets a fresh URL/asset).

    ``attempt(n)`` performs try ``n`` (1-based) from the beginning; a failure that
    :func:`is_transfer_retryable` accepts is logged (redacted), handed to ``on_failure`` (e.g. to
    delete a broken asset) and followed by a new try; the last failure is raised.
    """
    for number in range(1, attempts + 1):
        try:
            return attempt(number)
        except Exception as exc:  # judged below; anything else propagates unchanged
            if on_failure is not None:
                on_failure(exc)
            if number == attempts or not is_transfer_retryable(exc):
                raise
            logger.warning(
                "%s: attempt %d/%d failed (%s); restarting", what, number, attempts, short_error(exc)
            )
    raise AssertionError("unreachable")  # pragma: no cover
