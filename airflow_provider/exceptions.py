"""Exceptions raised by the provider.

Every error a DAG author can meet says what went wrong *and* what to do about it. Two families
under one base, :class:`OptimizationError`:

* :class:`PermanentError` (an ``AirflowFailException``): the same attempt would fail the same way
  (bad input, missing credentials, an unsafe id, a refused certificate, an ambiguous submission), so
  neither the hooks nor Airflow retry it;
* :class:`OptimizationProviderError`: service and transport failures that another try may cure, so
  the task's ``retries`` apply.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider.utils.redact import redact_text


class OptimizationError(AirflowException):
    """Base class of every error this provider raises."""


class PermanentError(OptimizationError, AirflowFailException):
    """Deterministic failures: retrying cannot help, so the task fails at once."""


class OptimizationProviderError(OptimizationError):
    """Base class of this provider's retryable errors."""


class InvalidInputError(PermanentError):
    """The problem given to the task is unusable (missing, unreadable, not JSON, too large), or a task
    argument breaks a rule (checked when the operator is built, and again by the hook at use)."""


class CredentialsError(PermanentError):
    """The connection lacks the credentials the service needs."""


class UnsafeIdentifierError(InvalidInputError):
    """An id (from the service or a task argument) cannot safely name a path segment or a file."""


class CertificateError(PermanentError):
    """The service's TLS certificate was refused: a configuration problem, not a transient one."""


class ServiceHTTPError(OptimizationProviderError):
    """The service answered with an HTTP error status.

    :param service: human name of the service ("Nextmv Cloud", "NVCF").
    :param method: HTTP method.
    :param target: what was asked for (a redacted URL or path: never a signature or token).
    :param status_code: HTTP status.
    :param detail: the service's error text (truncated; secrets it echoed back and signatures removed).
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
        self.target = redact_text(target, 500)
        self.status_code = status_code
        self.detail = redact_text(detail, 2000)
        self.retry_after = retry_after
        message = f"{service} {method} {self.target} failed with HTTP {status_code}"
        if self.detail:
            message += f": {self.detail}"
        hint = _HINTS.get(status_code)
        if hint:
            message += f" ({hint.format(service=service)})"
        super().__init__(message)


class ServiceRejectedError(ServiceHTTPError, PermanentError):
    """The service refused the request itself with a 4xx (not 408/429): a bad request, a problem it
    cannot accept, missing permission or an unknown resource. Sending it again cannot help, so it is
    not retried by the hooks nor by Airflow."""


#: 4xx statuses that are not about the request itself and may pass: timeout, rate limit.
TRANSIENT_CLIENT_STATUS = frozenset({408, 425, 429})


def http_error_class(status_code: int) -> type[ServiceHTTPError]:
    """:class:`ServiceRejectedError` (permanent) for a 4xx that names the request as the problem,
    :class:`ServiceHTTPError` (retryable) otherwise."""
    if 400 <= status_code < 500 and status_code not in TRANSIENT_CLIENT_STATUS:
        return ServiceRejectedError
    return ServiceHTTPError


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


class CallTimeoutError(ServiceUnavailableError):
    """One HTTP call (connect, headers and body) did not complete within its total time bound."""


class ProtocolError(OptimizationProviderError):
    """The service answered with something this provider cannot interpret (e.g. malformed JSON)."""


class ResponseTooLargeError(ProtocolError):
    """An answer was larger than the cap for its kind; reading stopped there (memory stays bounded)."""


class RunFailedError(OptimizationProviderError):
    """The remote run/request finished unsuccessfully (failed, canceled, errored, infeasible)."""


class InfeasibleError(PermanentError, RunFailedError):
    """The solver proved the problem has no (bounded) solution: infeasible or unbounded. The same
    problem gives the same answer on every try, so it is not retried; ``on_infeasible="succeed"``
    lets the task succeed instead (the ``solution_summary`` XCom then says so)."""


class InvalidProblemError(PermanentError, RunFailedError):
    """The service ran or validated the problem and refused it as invalid (cuOpt validation errors,
    a Nextmv run that failed on its input or options). Fix the input: a retry would fail the same way."""


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


class AmbiguousSubmissionError(PermanentError):
    """A create request failed in a way that leaves unknown whether the service acted on it, and the
    service offers no way to find out. Not retried (by the hook or by Airflow): re-sending could start
    a duplicate solve. The message names what to check before re-running the task."""
