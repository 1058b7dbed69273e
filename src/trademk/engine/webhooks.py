"""Webhook delivery: POST a JSON payload, retrying transient failures with backoff.

Connection errors, timeouts, 408, 425, 429 and 5xx answers are retried up to
``max_attempts`` in all, waiting ``backoff_initial * 2**n`` seconds (at most
``backoff_max``; a ``Retry-After`` in seconds is honoured up to that cap).
Other answers outside 2xx (a 404, a redirect) fail at once: retrying would not
change them. Redirects are not followed. Each delivery carries an
``Idempotency-Key`` header so a receiver can drop the duplicates that retries
may cause.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from trademk import __version__

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
_ERROR_TEXT_LIMIT: Final = 500


class DeliveryStatus(enum.StrEnum):
    NONE = "none"
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How a delivery ended: status, attempts made, the last error and HTTP status."""

    status: DeliveryStatus
    attempts: int
    error: str | None = None
    status_code: int | None = None


class WebhookSender:
    """Delivers JSON payloads to webhook URLs over one shared HTTP client."""

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("a webhook needs at least one attempt")
        if timeout <= 0 or backoff_initial < 0 or backoff_max < backoff_initial:
            raise ValueError("webhook timeout must be positive and 0 <= backoff_initial <= max")
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": f"trademk/{__version__}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wait: float = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))
        if retry_after is not None and retry_after.strip().isdigit():
            wait = max(wait, min(self.backoff_max, float(retry_after.strip())))
        return wait

    async def deliver(
        self, url: str, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> DeliveryOutcome:
        """POST ``payload`` to ``url`` until it is accepted, refused, or attempts run out."""
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        error: str | None = None
        status_code: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as err:
                error = f"{type(err).__name__}: {err}".strip()[:_ERROR_TEXT_LIMIT]
                status_code = None
            else:
                status_code = response.status_code
                if response.is_success:
                    return DeliveryOutcome(DeliveryStatus.DELIVERED, attempt, None, status_code)
                error = f"HTTP {status_code}: {response.text[:200]}".strip()
                if status_code not in RETRYABLE_STATUSES:
                    return DeliveryOutcome(DeliveryStatus.FAILED, attempt, error, status_code)
                retry_after = response.headers.get("retry-after")
            if attempt < self.max_attempts:
                await asyncio.sleep(self.delay(attempt, retry_after))
        return DeliveryOutcome(DeliveryStatus.FAILED, self.max_attempts, error, status_code)
