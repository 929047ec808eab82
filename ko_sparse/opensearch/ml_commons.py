"""ML-Commons model API: chunked registration, deployment, task polling and prediction."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from opensearchpy import OpenSearch
from tqdm.auto import tqdm

from ko_sparse.errors import ClusterError
from ko_sparse.opensearch.retry import with_backoff

ML = "/_plugins/_ml"
CHUNK_SIZE = 10_000_000  # ML-Commons rejects larger chunks ("Chunk size exceeds 10MB")
RUNNING_STATES = ("CREATED", "RUNNING")


class MLCommonsError(ClusterError):
    """An ML-Commons request or task that failed; the message says what the cluster said."""


@dataclass(frozen=True)
class ModelArtifact:
    """A model zip as ML-Commons receives it, the function it serves and its format. ``content`` is the
    zip's bytes or its path: a path is read one chunk at a time (a full-size model is ~600 MB)."""

    content: bytes | Path
    name: str
    function_name: str
    description: str = ""
    model_format: str = "TORCH_SCRIPT"

    @property
    def size(self) -> int:
        return self.content.stat().st_size if isinstance(self.content, Path) else len(self.content)

    @cached_property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        if not isinstance(self.content, Path):
            for start in range(0, len(self.content), size):
                yield self.content[start : start + size]
            return
        with self.content.open("rb") as source:
            yield from iter(lambda: source.read(size), b"")

    def chunk_count(self, size: int = CHUNK_SIZE) -> int:
        return max(1, math.ceil(self.size / size))


class MLCommons:
    """Thin wrapper over the ``_plugins/_ml`` REST API of one cluster."""

    def __init__(self, client: OpenSearch, poll_seconds: float = 1.0) -> None:
        self.client = client
        self.poll_seconds = poll_seconds

    def request(self, method: str, path: str, body: object = None) -> dict:
        return self.client.transport.perform_request(method, path, body=body)

    def register(
        self,
        artifact: ModelArtifact,
        model_group_id: str | None = None,
        progress: bool = False,
        on_failure: Callable[[str], None] | None = None,
    ) -> str:
        """``_register_meta`` then ``upload_chunk`` for each chunk; returns the model id.

        If an upload fails, ``on_failure(model_id)`` runs (e.g. to delete the half-uploaded model)."""
        meta = {
            "name": artifact.name,
            "version": "1.0.0",
            "description": artifact.description,
            "function_name": artifact.function_name,
            "model_format": artifact.model_format,
            "model_content_size_in_bytes": artifact.size,
            "model_content_hash_value": artifact.sha256,
            "total_chunks": artifact.chunk_count(),
        }
        if model_group_id:
            meta["model_group_id"] = model_group_id
        model_id = self.request("POST", f"{ML}/models/_register_meta", meta)["model_id"]
        chunks = tqdm(
            artifact.chunks(),
            total=artifact.chunk_count(),
            desc=f"Uploading {artifact.name}",
            unit="chunk",
            disable=not progress,
        )
        try:
            for number, chunk in enumerate(chunks):
                path = f"{ML}/models/{model_id}/upload_chunk/{number}"
                # a 429 here is mostly the parent circuit breaker: the node's heap fills with the chunks
                # passing through until it collects them, so wait longer than for a busy queue
                with_backoff(lambda path=path, chunk=chunk: self.request("POST", path, chunk), attempts=8)
        except BaseException:
            if on_failure is not None:
                on_failure(model_id)
            raise
        return model_id

    def deploy(self, model_id: str, timeout: float = 300) -> None:
        """Deploy and wait for the task; raises with the task's error when it fails."""
        task_id = with_backoff(lambda: self.request("POST", f"{ML}/models/{model_id}/_deploy"))["task_id"]
        task = self.wait_for_task(task_id, timeout)
        if task["state"] != "COMPLETED":
            raise MLCommonsError(
                f"deploying model {model_id} ended {task['state']}: {task.get('error', 'no error given')}"
            )

    def wait_for_task(self, task_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            task = self.request("GET", f"{ML}/tasks/{task_id}")
            if task["state"] not in RUNNING_STATES:
                return task
            if time.monotonic() > deadline:
                raise MLCommonsError(f"task {task_id} still {task['state']} after {timeout:.0f}s")
            time.sleep(self.poll_seconds)

    def predict(self, model_id: str, texts: list[str]) -> list[dict[str, float]]:
        """Token weights per text, as ML-Commons decodes them (``{token: weight}``)."""
        response = self.request("POST", f"{ML}/models/{model_id}/_predict", {"text_docs": texts})
        return [result["output"][0]["dataAsMap"]["response"][0] for result in response["inference_results"]]

    def model(self, model_id: str) -> dict:
        return self.request("GET", f"{ML}/models/{model_id}")

    def worker_nodes(self, model_id: str) -> list[str]:
        """Names of the nodes the model is deployed on."""
        ids = self.model(model_id).get("planning_worker_nodes") or []
        if not ids:
            return []
        nodes = self.client.nodes.info(node_id=",".join(ids), filter_path="nodes.*.name")["nodes"]
        return sorted(node["name"] for node in nodes.values())

    def undeploy(self, model_id: str) -> None:
        self.request("POST", f"{ML}/models/{model_id}/_undeploy")

    def delete(self, model_id: str) -> None:
        self.request("DELETE", f"{ML}/models/{model_id}")
