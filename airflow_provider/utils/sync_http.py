"""The requests side of the hooks' HTTP plumbing: one bounded, deadline-watched call path.

requests has no total timeout: its read timeout restarts with every byte, so an answer trickled a
byte at a time (headers included) never ends. :class:`CallWatch` bounds a call as a whole: the pool
classes of :class:`WatchedSession` register each connection a call uses, and when the call's time
is up a timer shuts those sockets down, which ends any blocked read at once. Bodies are read with a
byte cap (:func:`read_bounded`). :class:`SyncApi` is the one request loop of the sync hooks.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider.exceptions import CallTimeoutError
from airflow_provider.utils.http import (
    MAX_API_BODY_BYTES,
    Answer,
    Timeouts,
    TLSSettings,
    answer_or_raise,
    body_cap,
    check_declared_length,
    too_large,
    transport_error,
)
from airflow_provider.utils.redact import install_log_filter
from airflow_provider.utils.retry import RetryPolicy, sync_retrying

T = TypeVar("T")
_CURRENT = threading.local()
#: Chunk size of bounded reads of API answers, and of streamed downloads.
_READ_CHUNK = 64 * 1024
_DOWNLOAD_CHUNK = 1024 * 1024


# ---------------------------------------------------------------------------------------------- total time
class CallWatch:
    """Context manager: the HTTP calls made inside it on this thread end within ``seconds``.

    On expiry every socket the calls use is shut down (and any connection opened later), the
    blocked read fails, and the ``with`` block raises :class:`CallTimeoutError`.
    """

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = max(0.0, seconds)
        self.what = what
        self.fired = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._previous: CallWatch | None = None

    def add(self, conn: Any) -> None:
        with self._lock:
            self._conns.append(conn)
            if self.fired:
                _shutdown(conn)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for conn in self._conns:
                _shutdown(conn)
            # a connection still connecting has no socket yet: look again shortly
            self._timer = threading.Timer(0.5, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def __enter__(self) -> CallWatch:
        self._previous = getattr(_CURRENT, "watch", None)
        _CURRENT.watch = self
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            fired = self.fired
        _CURRENT.watch = self._previous
        # Also without an exception: a head or body cut by the shutdown can parse as a short, valid
        # answer (headers ended by EOF, an empty body), which must not pass for the real one.
        if fired and not isinstance(exc, CallTimeoutError):
            raise CallTimeoutError(
                f"{self.what}: no complete answer within {self.seconds:.0f}s (total time bound of one call)"
            ) from exc


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """Pool mixin: hands every connection a call takes to the thread's current :class:`CallWatch`."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.add(conn)
        return conn


class _WatchedHTTPPool(_Watched, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_Watched, HTTPSConnectionPool):
    pass


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


class WatchedSession(requests.Session):
    """A session whose calls :class:`CallWatch` can bound, and whose own ``verify`` (the connection's
    TLS setting) beats ``REQUESTS_CA_BUNDLE`` (plain requests lets the environment override even
    ``verify=False`` or a configured CA bundle, psf/requests#3829)."""

    def __init__(self, tls: TLSSettings) -> None:
        super().__init__()
        install_log_filter()
        self.verify = tls.requests_verify
        for prefix in ("http://", "https://"):
            self.mount(prefix, _WatchedAdapter())

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        if verify is None and self.verify is not True:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


# ---------------------------------------------------------------------------------------------- bodies
def read_bounded(response: requests.Response, cap: int, service: str, what: str) -> bytes:
    """The (decoded) body of a streamed response, refusing past ``cap`` bytes without reading on."""
    check_declared_length(response.headers, cap, service, what)
    body = bytearray()
    for chunk in response.iter_content(_READ_CHUNK):
        body += chunk
        if len(body) > cap:
            raise too_large(service, what, cap)
    return bytes(body)


#: What a streamed transfer can raise mid-body (requests wraps only some of it).
STREAM_ERRORS: tuple[type[BaseException], ...] = (requests.RequestException, OSError)
try:  # urllib3 raises its own errors when the raw body is read directly
    from urllib3.exceptions import HTTPError as _Urllib3Error

    STREAM_ERRORS = (*STREAM_ERRORS, _Urllib3Error)
except ImportError:  # pragma: no cover
    pass


# ---------------------------------------------------------------------------------------------- calls
@dataclass
class SyncApi:
    """One service's API over requests: the request loop every sync hook call goes through.

    :param service: human name used in messages ("Nextmv Cloud", "NVCF").
    :param session: a :class:`WatchedSession` carrying the API's static headers.
    :param auth: extra headers per attempt (fresh tokens); ``on_unauthorized`` is asked once after
        a 401 whether credentials were renewed (then the attempt is repeated).
    """

    service: str
    session: WatchedSession
    policy: RetryPolicy
    timeouts: Timeouts
    logger: logging.Logger | Any
    auth: Callable[[], Mapping[str, str]] | None = None
    on_unauthorized: Callable[[], bool] | None = None

    def call(
        self,
        method: str,
        url: str,
        *,
        target: str,
        what: str,
        idempotent: bool,
        params: Mapping[str, Any] | None = None,
        data: bytes | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Callable[[int, Any], bool] | None = None,
        decode: Callable[[int, Mapping[str, str], bytes], Any] | None = None,
        parse: bool = True,
        cap: int = MAX_API_BODY_BYTES,
        read_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """One API call under the shared retry policy, each attempt bounded in bytes and total time.

        The body is read (capped) and parsed inside the retry loop, so a garbled read is retried and
        a garbled create counts as an ambiguous failure. ``deadline`` (epoch seconds) shortens every
        attempt and ends the retries: a wait's deadline holds even against a slow answer.
        """

        def attempt() -> Answer:
            renewed = False
            while True:
                sent = {**(self.auth() if self.auth else {}), **(headers or {})}
                total = self.timeouts.for_call(read_timeout)
                if deadline is not None:
                    total = min(total, max(1.0, deadline - time.time()))
                with CallWatch(total, f"{self.service} {what}"):
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers=sent,
                        stream=True,
                        timeout=(self.timeouts.connect, read_timeout or self.timeouts.read),
                    )
                    with contextlib.closing(response):
                        status = response.status_code
                        if status == 401 and self.on_unauthorized and not renewed and self.on_unauthorized():
                            renewed = True
                            continue
                        limit = body_cap(status, error_envelopes=accept is not None, cap=cap)
                        body = read_bounded(response, limit, self.service, what)
                return answer_or_raise(
                    status,
                    response.headers,
                    body,
                    service=self.service,
                    method=method,
                    target=target,
                    what=what,
                    accept=accept,
                    decode=decode,
                    parse=parse,
                )

        return self.retrying(what, attempt, idempotent=idempotent, deadline=deadline)

    def retrying(
        self, what: str, fn: Callable[[], T], *, idempotent: bool, deadline: float | None = None
    ) -> T:
        """Run ``fn`` under the retry policy; transport errors that survive it become provider errors."""
        try:
            for attempt in sync_retrying(
                self.policy,
                idempotent=idempotent,
                logger=self.logger,
                what=f"{self.service} {what}",
                deadline=deadline,
            ):
                with attempt:
                    return fn()
        except STREAM_ERRORS as exc:
            raise transport_error(self.service, what, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def stream(
        self, url: str, *, what: str, total: float, headers: Mapping[str, str] | None = None
    ) -> Iterator[requests.Response]:
        """GET ``url`` (retried until the answer's headers arrive) and yield the open response; its body
        must be consumed inside the ``with`` block, which bounds the whole transfer to ``total``."""
        from airflow_provider.utils.redact import redact_url

        with CallWatch(total, f"{self.service} {what}"):

            def open_() -> requests.Response:
                response = self.session.get(
                    url,
                    headers=headers,
                    stream=True,
                    timeout=(self.timeouts.connect, self.timeouts.read),
                )
                if response.status_code >= 400:
                    with contextlib.closing(response):
                        body = read_bounded(response, body_cap(response.status_code), self.service, what)
                    answer_or_raise(
                        response.status_code,
                        response.headers,
                        body,
                        service=self.service,
                        method="GET",
                        target=redact_url(url),
                        what=what,
                    )
                return response

            response = self.retrying(what, open_, idempotent=True)
            with contextlib.closing(response):
                yield response

    def download(self, url: str, sink: Callable[[Iterator[bytes]], T], *, what: str, total: float) -> T:
        """The one streamed GET: hand ``url``'s (decoded) body, in chunks, to ``sink`` and return what it
        returns. Opening is retried; a body that breaks mid-way raises a provider error (redacted) for
        the caller's restart loop; the whole transfer is bounded by ``total`` seconds."""
        try:
            with self.stream(url, what=what, total=total) as response:
                return sink(response.iter_content(_DOWNLOAD_CHUNK))
        except STREAM_ERRORS as exc:
            raise transport_error(self.service, what, exc) from exc
