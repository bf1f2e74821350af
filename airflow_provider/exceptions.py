"""Exceptions raised by the provider.

Every error a DAG author can meet says what went wrong *and* what to do about it. Errors caused by
the task's own input (missing file, invalid JSON, too large, missing credentials) derive from
``AirflowFailException`` so Airflow does not burn retries on them; service and run failures are
ordinary ``AirflowException`` so the task's ``retries`` apply.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class OptimizationProviderError(AirflowException):
    """Base class of this provider's retryable errors."""


class InvalidInputError(AirflowFailException):
    """The problem given to the task is unusable (missing, unreadable, not JSON, too large)."""


class CredentialsError(AirflowFailException):
    """The connection lacks the credentials the service needs."""


class ServiceHTTPError(OptimizationProviderError):
    """The service answered with an HTTP error status.

    :param service: human name of the service ("Nextmv Cloud", "NVCF").
    :param method: HTTP method.
    :param target: what was asked for (a redacted URL or path: never a signature or token).
    :param status_code: HTTP status.
    :param detail: the service's error text, as it sent it (truncated).
    :param retry_after: seconds from a ``Retry-After`` header, when present.
    """

    def __init__(
        self,
        service: str,
        method: str,
        target: str,
        status_code: int,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.service = service
        self.method = method
        self.target = target
        self.status_code = status_code
        self.detail = detail[:2000]
        self.retry_after = retry_after
        message = f"{service} {method} {target} failed with HTTP {status_code}"
        if self.detail:
            message += f": {self.detail}"
        hint = _HINTS.get(status_code)
        if hint:
            message += f" ({hint.format(service=service)})"
        super().__init__(message)


_HINTS = {
    400: "the service rejected the request as malformed; check the task's arguments",
    401: "the API key or token was rejected; check the password/credentials of the Airflow connection",
    403: "the credentials lack permission for this resource",
    404: "no such resource; check the app/function id and the run/request id",
    413: "the payload is larger than the service accepts",
    429: "rate limited by {service}",
}


class ServiceUnavailableError(OptimizationProviderError):
    """The service could not be reached, or kept failing, after all retries."""


class ProtocolError(OptimizationProviderError):
    """The service answered with something this provider cannot interpret (e.g. malformed JSON)."""


class RunFailedError(OptimizationProviderError):
    """The remote run/request finished unsuccessfully (failed, canceled, errored, infeasible)."""


class RunTimeoutError(OptimizationProviderError):
    """The remote run did not finish before the task's deadline (it was canceled)."""


class UnsafeArchiveError(ProtocolError):
    """An archive from the service tried to escape its folder or exceeded the size bounds."""


class RequestGoneError(RunFailedError):
    """NVCF no longer knows the request (404): its result was already handed out once, or it expired."""


class MalformedResponseError(ProtocolError):
    """A response body that is not the JSON it should be (garbled or truncated in transit).

    Worth another try for idempotent reads; for a create it is ambiguous (it may have worked).
    """


class AmbiguousSubmissionError(AirflowFailException):
    """A create request failed in a way that leaves unknown whether the service acted on it, and the
    service offers no way to find out. Not retried (by the hook or by Airflow): re-sending could start
    a duplicate solve. The message names what to check before re-running the task."""
