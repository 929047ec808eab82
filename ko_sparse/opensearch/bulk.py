"""Bulk writes that lose nothing: every document ends indexed, reported failed with the cluster's reason,
or the write stops with :class:`ClusterUnavailable` so that a re-run can continue.

The requests go through opensearch-py's ``streaming_bulk``. Its own retry covers only 429 and does not
count; here a document refused for a passing reason (429, 502/503/504, a timeout or a lost connection)
is sent again after a growing pause, and the retries are counted. Documents carry fixed ``_id``s, so a
document sent twice (a timeout after the cluster had written it) is stored once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opensearchpy import OpenSearch, helpers

from ko_sparse.errors import ClusterError
from ko_sparse.opensearch.retry import backoff_delay

PASSING_STATUS = (429, 502, 503, 504, "N/A", "TIMEOUT")  # "N/A": no answer (connection refused, reset, timeout)


class ClusterUnavailable(ClusterError):
    """Documents were still refused for passing reasons after every retry (node down, queue full)."""


@dataclass(frozen=True)
class DocumentFailure:
    doc_id: str
    status: int | str
    reason: str


@dataclass
class BulkOutcome:
    indexed: int = 0
    created: int = 0
    failures: list[DocumentFailure] = field(default_factory=list)
    retries: int = 0
    retried: dict[str, int] = field(default_factory=dict)  # why documents were sent again: status -> count


def _reason(info: dict) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        reason = f"{error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        return f"{reason} (caused by {cause.get('type')}: {cause.get('reason')})" if isinstance(cause, dict) else reason
    return str(error)


@dataclass
class BulkWriter:
    """Writes batches of index actions to one index (optionally through an ingest pipeline)."""

    client: OpenSearch
    index: str
    pipeline: str | None = None
    chunk_size: int = 500
    max_retries: int = 8
    first_backoff: float = 1.0
    max_backoff: float = 30.0

    def write(self, actions: list[dict]) -> BulkOutcome:
        """Index ``actions`` (``{"_id", "_source"}``); raises :class:`ClusterUnavailable` when some still
        fail for passing reasons after ``max_retries`` rounds."""
        outcome = BulkOutcome()
        pending = [{"_index": self.index, **action} for action in actions]
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(backoff_delay(attempt - 1, self.first_backoff, self.max_backoff))
                outcome.retries += len(pending)
            pending, last = self._send(pending, outcome)
            if not pending:
                return outcome
        raise ClusterUnavailable(
            f"{len(pending)} documents were still refused after {self.max_retries} retries (last: {last})"
        )

    def _send(self, actions: list[dict], outcome: BulkOutcome) -> tuple[list[dict], str]:
        """One pass; returns the actions to send again and the last passing reason."""
        again, last = [], ""
        extra = {"pipeline": self.pipeline} if self.pipeline else {}
        results = helpers.streaming_bulk(  # no retries inside: one result per action, in order
            self.client, actions, chunk_size=self.chunk_size, raise_on_error=False, raise_on_exception=False, **extra
        )
        for action, (ok, item) in zip(actions, results, strict=True):
            info = next(iter(item.values()))
            if ok:
                outcome.indexed += 1
                outcome.created += info.get("result") == "created"
            elif info.get("status") in PASSING_STATUS:
                again.append(action)
                status = str(info.get("status"))
                outcome.retried[status] = outcome.retried.get(status, 0) + 1
                last = f"{info.get('status')} {_reason(info)}"[:300]
            else:
                outcome.failures.append(DocumentFailure(action["_id"], info.get("status"), _reason(info)))
        return again, last
