"""What the two synchronous hooks share: retry policy, timeouts and their two HTTP sessions.

Every sync hook keeps an *API* session (credentials, User-Agent) and a separate *transfer* session
for presigned URLs that never carries credentials, so an API key cannot reach a storage host, not
even through a redirect.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider.utils.http import DEFAULT_TIMEOUT, USER_AGENT, TLSSettings
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy


class _Session(requests.Session):
    """A session whose own ``verify`` (the connection's TLS setting) beats ``REQUESTS_CA_BUNDLE``.

    Plain requests lets those environment variables override ``session.verify`` — even
    ``verify=False`` or a configured CA bundle (psf/requests#3829).
    """

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        if verify is None and self.verify is not True:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


class ServiceHook(BaseHook):
    """Base of :class:`~airflow_provider.hooks.nextmv.NextmvHook` and :class:`~airflow_provider.hooks.cuopt.CuOptHook`.

    :param retry_policy: bounds of the retry loop for transient errors (429, 5xx, network).
    :param timeout: (connect, read) seconds for API calls.
    """

    def __init__(
        self, *, retry_policy: RetryPolicy = DEFAULT_POLICY, timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ):
        super().__init__()
        self.retry_policy = retry_policy
        self.timeout = timeout

    @property
    def tls(self) -> TLSSettings:
        return self.settings.tls  # type: ignore[attr-defined]

    def api_headers(self) -> dict[str, Any]:
        """Default headers of the API session (subclasses add credentials when they are static)."""
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    @cached_property
    def session(self) -> requests.Session:
        """The API session. Never used for presigned URLs."""
        session = _Session()
        session.headers.update(self.api_headers())
        session.verify = self.tls.requests_verify
        return session

    @cached_property
    def transfer_session(self) -> requests.Session:
        """Presigned uploads/downloads: no credentials, ever."""
        session = _Session()
        session.verify = self.tls.requests_verify
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        for name in ("session", "transfer_session"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
