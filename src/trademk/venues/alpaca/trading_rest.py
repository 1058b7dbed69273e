"""alpaca-py's ``TradingClient`` made safe for an event loop, with retries by error type.

The SDK is synchronous (``requests``), so every call runs in a small thread
pool of its own: the loop never waits on a socket. Two SDK defaults are changed:

- ``requests`` has no timeout by default; a hung connection would hold a
  thread forever. Every request gets ``request_timeout`` through the session's
  transport adapter (the SDK has no option for it).
- The SDK retries 429 and 504 itself, sleeping a fixed 3 s inside the thread,
  and offers no constructor option to turn it off. It is turned off
  (``_retry = 0``): retries belong to the caller, because retrying an order
  submission safely needs a lookup first (``AlpacaVenue.submit``).

``find_order`` and ``list_orders`` (every page after a time, ties included)
are the order queries the venue and its catch-up share.

Errors become the domain error tree: 429 → ``RateLimitedError`` (with
``Retry-After``), 5xx and network failures → ``AmbiguousOutcome`` (a
``TransientError``: the request may or may not have taken effect), other 4xx →
``RejectedError`` subclasses. Secrets never appear in messages.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Final, TypeVar

import requests
import structlog
from requests.adapters import HTTPAdapter

from trademk.domain.errors import RateLimitedError, RejectedError, TransientError
from trademk.engine.clock import ns_to_datetime
from trademk.venues.alpaca.alpaca_sdk import (
    APIError,
    GetOrdersRequest,
    QueryOrderStatus,
    Sort,
    TradingClient,
)
from trademk.venues.alpaca.trading_schemas import AlpacaOrder, parse_order, parse_orders
from trademk.venues.reconnect import ExponentialBackoff

log = structlog.get_logger(__name__)

T = TypeVar("T")

DUPLICATE_CLIENT_ORDER_ID_CODE: Final = 40010001
PAGE_LIMIT: Final = 500  # Alpaca's maximum for GET /v2/orders


class AmbiguousOutcome(TransientError):
    """The request failed in a way that leaves unknown whether it took effect."""


class NotFoundError(RejectedError):
    """Alpaca has no such order (404)."""


class DuplicateClientOrderId(RejectedError):
    """Alpaca already has an order with this ``client_order_id`` (422, code 40010001)."""


class _TimeoutAdapter(HTTPAdapter):
    """A transport adapter that gives every request a timeout and never retries on its own."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=0)
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def _error_body(err: APIError) -> tuple[int | None, str]:
    """Alpaca's ``(code, message)`` from an error body (JSON, or plain text)."""
    text = str(err)
    try:
        body = json.loads(text)
    except ValueError:
        return None, text[:300]
    if not isinstance(body, dict):
        return None, text[:300]
    code = body.get("code")
    return (code if isinstance(code, int) else None), str(body.get("message", text))[:300]


def _retry_after(err: APIError) -> float | None:
    response = err.response
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def translate_api_error(err: APIError, what: str) -> Exception:
    """The domain error for an Alpaca HTTP error answer to ``what``."""
    status = err.status_code
    code, message = _error_body(err)
    detail = f"{what}: Alpaca answered {status}: {message}"
    if status == 429:
        return RateLimitedError(detail, retry_after=_retry_after(err))
    if status is None or status >= 500:
        return AmbiguousOutcome(detail)
    if status == 404:
        return NotFoundError(detail, reason=message)
    if status == 422 and code == DUPLICATE_CLIENT_ORDER_ID_CODE and "client_order_id" in message:
        return DuplicateClientOrderId(detail, reason=message)
    if status == 401:
        return RejectedError(f"{what}: Alpaca refused the API key ({message})", reason=message)
    return RejectedError(detail, reason=message)


class AlpacaRest:
    """A ``TradingClient`` (raw JSON answers) whose calls run in worker threads."""

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        base_url: str,
        request_timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        workers: int = 4,
    ) -> None:
        if request_timeout <= 0 or max_attempts < 1 or workers < 1:
            raise ValueError("request_timeout must be > 0, max_attempts and workers >= 1")
        self.client = TradingClient(
            api_key=api_key, secret_key=secret_key, raw_data=True, url_override=base_url
        )
        self.client._retry = 0  # see the module docstring
        adapter = _TimeoutAdapter(request_timeout)
        self.client._session.mount("http://", adapter)
        self.client._session.mount("https://", adapter)
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.requests = 0
        self.retries = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alpaca-rest")

    def backoff(self) -> ExponentialBackoff:
        """A fresh backoff for one operation's retries."""
        return ExponentialBackoff(self.backoff_initial, self.backoff_max)

    async def call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """One attempt of ``fn(*args)`` in a worker thread, errors translated."""
        loop = asyncio.get_running_loop()
        self.requests += 1
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except APIError as err:
            raise translate_api_error(err, what) from None
        except requests.RequestException as err:
            raise AmbiguousOutcome(f"{what}: {type(err).__name__}: {err}") from None

    async def wait_before_retry(self, err: TransientError, backoff: ExponentialBackoff) -> None:
        """Sleep before the next attempt: ``Retry-After`` when given, else the backoff."""
        self.retries += 1
        delay = backoff.next_delay()
        if isinstance(err, RateLimitedError) and err.retry_after is not None:
            delay = max(delay, err.retry_after)
        log.info("retrying Alpaca request", error=str(err), delay=round(delay, 3))
        await asyncio.sleep(delay)

    async def call_with_retry(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``call`` retried on transient errors; for requests that are safe to repeat."""
        backoff = self.backoff()
        attempt = 1
        while True:
            try:
                return await self.call(what, fn, *args)
            except TransientError as err:
                if attempt >= self.max_attempts:
                    raise
                attempt += 1
                await self.wait_before_retry(err, backoff)

    async def find_order(self, client_order_id: str) -> AlpacaOrder | None:
        """``GET /v2/orders:by_client_order_id``; None when Alpaca has no such order."""
        try:
            raw = await self.call_with_retry(
                f"look up {client_order_id}", self.client.get_order_by_client_id, client_order_id
            )
        except NotFoundError:
            return None
        return parse_order(raw)

    async def list_orders(
        self, status: QueryOrderStatus, after_ns: int | None = None
    ) -> list[AlpacaOrder]:
        """``GET /v2/orders``: the newest ``PAGE_LIMIT``; with ``after_ns``, all pages after it."""
        if after_ns is None:
            request = GetOrdersRequest(status=status, limit=PAGE_LIMIT, direction=Sort.DESC)
            return parse_orders(
                await self.call_with_retry("list orders", self.client.get_orders, request)
            )
        found: dict[str, AlpacaOrder] = {}
        after = ns_to_datetime(after_ns)
        while True:
            request = GetOrdersRequest(
                status=status, limit=PAGE_LIMIT, after=after, direction=Sort.ASC
            )
            page = parse_orders(
                await self.call_with_retry("list orders", self.client.get_orders, request)
            )
            fresh = [order for order in page if order.id not in found]
            found.update((order.id, order) for order in page)
            if len(page) < PAGE_LIMIT or not fresh:
                return list(found.values())
            # ``after`` is exclusive: step back a microsecond so ties are not skipped.
            after = ns_to_datetime(page[-1].submitted_ns) - timedelta(microseconds=1)

    def close(self) -> None:
        """Stop the worker threads (a request still running is abandoned) and the session."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.client._session.close()
