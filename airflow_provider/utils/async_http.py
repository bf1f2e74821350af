"""The aiohttp side of the hooks' HTTP plumbing, shared by the Nextmv and cuOpt async hooks.

Same retry policy and the same error types as the sync side (``utils/sync_http.py``), so a
trigger and a worker report the same failure the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from airflow_provider.exceptions import ServiceHTTPError, ServiceUnavailableError
from airflow_provider.utils.http import Answer, error_detail, parse_json_answer, parse_retry_after
from airflow_provider.utils.redact import redact_text
from airflow_provider.utils.retry import RetryPolicy, async_retrying


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    service: str,
    target: str,
    what: str,
    policy: RetryPolicy,
    logger: logging.Logger | Any,
    idempotent: bool = True,
    headers: Callable[[], Awaitable[dict[str, str]]] | None = None,
    static_headers: Mapping[str, str] | None = None,
    on_unauthorized: Callable[[], Awaitable[bool]] | None = None,
    accept: Callable[[int, Any], bool] | None = None,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> Answer:
    """One call under the shared retry policy; JSON body parsed (empty body → ``{}``).

    :param headers: awaited before every attempt (fresh tokens).
    :param static_headers: sent with every attempt.
    :param on_unauthorized: on a 401, awaited once; True means "credentials renewed, try again".
    :param accept: lets an error status with a meaningful body through (NVCF error envelopes).
    """

    async def attempt() -> Answer:
        renewed = False
        while True:
            extra = {**(static_headers or {}), **(await headers() if headers else {})}
            async with session.request(
                method, url, headers=extra, json=json_body, data=form, timeout=timeout
            ) as response:
                body = await response.read()
                status, resp_headers = response.status, dict(response.headers)
            if status == 401 and on_unauthorized is not None and not renewed and await on_unauthorized():
                renewed = True
                continue
            payload = parse_json_answer(body, service, what) if status < 400 or accept else None
            if status >= 400 and not (accept and accept(status, payload)):
                raise ServiceHTTPError(
                    service,
                    method,
                    target,
                    status,
                    error_detail(body),
                    retry_after=parse_retry_after(resp_headers.get("Retry-After")),
                )
            return Answer(status, resp_headers, payload)

    try:
        async for retry in async_retrying(
            policy, idempotent=idempotent, logger=logger, what=f"{service} {what}"
        ):
            with retry:
                return await attempt()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceUnavailableError(
            f"{service} {what} failed: {type(exc).__name__}: {redact_text(str(exc), 500)}"
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def ssl_option(verify: bool, ca_bundle: str | None) -> Any:
    """aiohttp's ``ssl=`` value: default verification, off, or a context from a CA bundle."""
    if not verify:
        return False
    if ca_bundle:
        import ssl

        return ssl.create_default_context(cafile=ca_bundle)
    return True
