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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

from airflow_provider.exceptions import MalformedResponseError, ServiceHTTPError

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


def _transient_transport_error(exc: BaseException) -> bool:
    """Connection resets, timeouts, truncated bodies: worth another try for idempotent requests."""
    import requests

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
    policy: RetryPolicy, *, idempotent: bool, logger: logging.Logger, what: str
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
            _short(exc),
            wait,
        )

    return {
        "stop": tenacity.stop_after_attempt(policy.max_attempts)
        | tenacity.stop_after_delay(policy.max_elapsed),
        "wait": _WaitRetryAfterOrBackoff(policy),
        "retry": tenacity.retry_if_exception(lambda e: is_retryable(e, idempotent=idempotent)),
        "before_sleep": before_sleep,
        "reraise": True,
    }


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


def sync_retrying(
    policy: RetryPolicy, *, idempotent: bool, logger: logging.Logger, what: str, sleep: Callable | None = None
) -> tenacity.Retrying:
    kwargs = _retry_kwargs(policy, idempotent=idempotent, logger=logger, what=what)
    if sleep is not None:
        kwargs["sleep"] = sleep
    return tenacity.Retrying(**kwargs)


def async_retrying(
    policy: RetryPolicy, *, idempotent: bool, logger: logging.Logger, what: str
) -> tenacity.AsyncRetrying:
    return tenacity.AsyncRetrying(**_retry_kwargs(policy, idempotent=idempotent, logger=logger, what=what))


def is_ambiguous(exc: BaseException) -> bool:
    """A failure that leaves unknown whether a non-idempotent request took effect.

    Exactly the failures worth retrying for a read but not for a create: the request may have
    been processed (lost response, reset after sending, 500/502/504).
    """
    from airflow_provider.exceptions import ServiceUnavailableError

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
    from airflow_provider.exceptions import ServiceUnavailableError

    if isinstance(exc, ServiceHTTPError):
        return exc.status_code in RETRYABLE_STATUS | {403, 408}
    return isinstance(exc, (ServiceUnavailableError, MalformedResponseError))
