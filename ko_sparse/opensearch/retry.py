"""Retrying requests that failed for reasons that pass: lost connections, 429 and 5xx answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from opensearchpy import ConnectionError as OpenSearchConnectionError
from opensearchpy import TransportError

T = TypeVar("T")
RETRYABLE_STATUS = (429, 500, 502, 503, 504)


def backoff_delay(retry: int, first_delay: float = 1.0, max_delay: float = 30.0) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): 1, 2, 4 ... at most ``max_delay``."""
    return min(first_delay * 2**retry, max_delay)


def with_backoff(
    action: Callable[[], T],
    attempts: int = 4,
    first_delay: float = 1.0,
    max_delay: float = 30.0,
    on_retry: Callable[[TransportError], None] | None = None,
) -> T:
    """Run ``action``; on a retryable failure wait 1, 2, 4... seconds (at most ``max_delay``) and try again
    (``on_retry`` hears of each failure that is retried)."""
    for attempt in range(attempts):
        try:
            return action()
        except (OpenSearchConnectionError, TransportError) as error:
            retryable = isinstance(error, OpenSearchConnectionError) or error.status_code in RETRYABLE_STATUS
            if not retryable or attempt == attempts - 1:
                raise
            if on_retry is not None:
                on_retry(error)
            time.sleep(backoff_delay(attempt, first_delay, max_delay))
    raise AssertionError("unreachable")


def failure_reason(error: TransportError) -> str:
    """``500 search_phase_execution_exception (caused by node_not_connected_exception)``: status, type, cause."""
    info = error.info.get("error") if isinstance(error.info, dict) else None
    cause = info.get("caused_by") if isinstance(info, dict) else None
    caused_by = f" (caused by {cause.get('type')})" if isinstance(cause, dict) else ""
    return f"{error.status_code} {error.error}{caused_by}"
