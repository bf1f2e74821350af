"""What the synchronous hooks share: settings, retry policy, timeouts and their two HTTP paths.

Every sync hook keeps an *API* path (credentials, User-Agent) and a separate *transfer* path for
presigned URLs that never carries credentials, so an API key cannot reach a storage host, not even
through a redirect. Both are composed helpers (``utils/sync_http.SyncApi``,
``utils/presigned.PresignedTransfers``) that need nothing back from the hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar, Protocol

import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider.utils.http import DEFAULT_TIMEOUTS, USER_AGENT, Answer, Timeouts, TLSSettings
from airflow_provider.utils.presigned import PresignedTransfers, transfer_timeouts
from airflow_provider.utils.retry import DEFAULT_POLICY, RetryPolicy
from airflow_provider.utils.sync_http import SyncApi, WatchedSession


class ServiceSettings(Protocol):
    """What every service's resolved connection settings offer the base hook."""

    tls: TLSSettings

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        ...


class ServiceHook(BaseHook):
    """Base of the provider's sync hooks (Nextmv, cuOpt on NVCF, self-hosted cuOpt).

    Subclasses define ``service`` (its name in messages), :attr:`settings` (the resolved
    connection) and, when credentials change per call, :meth:`auth_headers` /
    :meth:`renew_credentials`.

    :param retry_policy: bounds of the retry loop for transient errors (429, 5xx, network).
    :param timeout: :class:`~airflow_provider.utils.http.Timeouts`, or ``(connect, read)`` seconds.
    """

    service: ClassVar[str] = "service"

    def __init__(
        self,
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        timeout: Timeouts | tuple[float, ...] = DEFAULT_TIMEOUTS,
    ) -> None:
        super().__init__()
        self.retry_policy = retry_policy
        self.timeouts = Timeouts.of(timeout)

    @property
    def settings(self) -> ServiceSettings:
        """The resolved connection (subclasses load it once, as a cached property)."""
        raise NotImplementedError

    def api_headers(self) -> dict[str, str]:
        """Static headers of the API session (subclasses add credentials when they are static)."""
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    def auth_headers(self) -> Mapping[str, str]:
        """Headers computed before every API attempt (fresh tokens); none by default."""
        return {}

    def renew_credentials(self) -> bool:
        """After a 401: renew what :meth:`auth_headers` sends and say whether a retry is worth it."""
        return False

    @cached_property
    def api(self) -> SyncApi:
        """The API call path: credentials, retries, byte caps and a total time bound per call."""
        session = WatchedSession(self.settings.tls)
        session.headers.update(self.api_headers())
        return SyncApi(
            self.service,
            session,
            self.retry_policy,
            self.timeouts,
            self.log,
            auth=self.auth_headers,
            on_unauthorized=self.renew_credentials,
        )

    def call_api(self, method: str, path: str, **kwargs: Any) -> Answer:
        """One call to an API ``path`` under the connection's base URL, with credentials, retries,
        byte caps and the total time bound (keyword arguments as :meth:`SyncApi.call`)."""
        return self.api.call(method, self.settings.url(path), target=f"/{path}", **kwargs)

    @cached_property
    def transfers(self) -> PresignedTransfers:
        """Presigned uploads/downloads: no credentials, ever."""
        api = SyncApi(
            self.service,
            WatchedSession(self.settings.tls),
            self.retry_policy,
            transfer_timeouts(self.timeouts.connect),
            self.log,
        )
        return PresignedTransfers(api)

    @property
    def session(self) -> requests.Session:
        """The API session (never used for presigned URLs)."""
        return self.api.session

    def get_conn(self) -> requests.Session:
        """Airflow's hook interface: the API session."""
        return self.session

    def close(self) -> None:
        """Close both HTTP sessions (safe to call more than once)."""
        for name in ("api", "transfers"):
            helper = self.__dict__.pop(name, None)
            if helper is not None:
                (helper.api if name == "transfers" else helper).session.close()
