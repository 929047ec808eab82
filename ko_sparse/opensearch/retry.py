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


def with_backoff(action: Callable[[], T], attempts: int = 4, first_delay: float = 1.0, max_delay: float = 30.0) -> T:
    """Run ``action``; on a retryable failure wait 1, 2, 4... seconds (at most ``max_delay``) and try again."""
    for attempt in range(attempts):
        try:
            return action()
        except (OpenSearchConnectionError, TransportError) as error:
            retryable = isinstance(error, OpenSearchConnectionError) or error.status_code in RETRYABLE_STATUS
            if not retryable or attempt == attempts - 1:
                raise
            time.sleep(backoff_delay(attempt, first_delay, max_delay))
    raise AssertionError("unreachable")
