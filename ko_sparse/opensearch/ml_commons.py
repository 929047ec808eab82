"""What opensearch-py's ``client.plugins.ml`` lacks: a chunked upload of a model file, a deploy that waits for
its task and is safe to retry, decoded sparse ``_predict`` weights and the names of a model's nodes. Every
other ML-Commons endpoint is used through the library (``MLCommons.api``)."""

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

CHUNK_SIZE = 10_000_000  # ML-Commons rejects larger chunks ("Chunk size exceeds 10MB")
RUNNING_STATES = ("CREATED", "RUNNING")
DEPLOYED_STATES = ("DEPLOYED", "PARTIALLY_DEPLOYED")


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
    """The ML-Commons steps ko-sparse needs that span several requests, on one cluster."""

    def __init__(self, client: OpenSearch, poll_seconds: float = 1.0) -> None:
        self.client = client
        self.api = client.plugins.ml
        self.poll_seconds = poll_seconds

    def register(
        self,
        artifact: ModelArtifact,
        model_group_id: str | None = None,
        progress: bool = False,
        created: Callable[[str], None] | None = None,
    ) -> str:
        """``_register_meta`` then ``upload_chunk`` for each chunk; returns the model id.

        ``created(model_id)`` runs as soon as the model exists, before its chunks are sent (e.g. to record it
        for deletion should the upload fail)."""
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
        model_id = self.api.register_model_meta(body=meta)["model_id"]
        if created is not None:
            created(model_id)
        chunks = tqdm(
            artifact.chunks(),
            total=artifact.chunk_count(),
            desc=f"Uploading {artifact.name}",
            unit="chunk",
            disable=not progress,
        )
        for number, chunk in enumerate(chunks):
            # a 429 here is mostly the parent circuit breaker: the node's heap fills with the chunks
            # passing through until it collects them, so wait longer than for a busy queue
            with_backoff(
                lambda number=number, chunk=chunk: self.api.upload_chunk(
                    model_id=model_id, chunk_number=number, body=chunk
                ),
                attempts=8,
            )
        return model_id

    def deploy(self, model_id: str, timeout: float = 300) -> None:
        """Deploy and wait until the model is deployed; raises with the cluster's error when it fails.

        ``_deploy`` is not safe to repeat, so a retry (after a lost connection or a 5xx) first reads the
        model's state: deployed is done, deploying is waited for, anything else is deployed again."""
        task_id = with_backoff(lambda: self._deploy_unless_started(model_id))
        if task_id is not None:
            task = self.wait_for_task(task_id, timeout)
            if task["state"] != "COMPLETED":
                raise MLCommonsError(
                    f"deploying model {model_id} ended {task['state']}: {task.get('error', 'no error given')}"
                )
            return
        state = self.wait_while_deploying(model_id, timeout)
        if state not in DEPLOYED_STATES:
            raise MLCommonsError(f"deploying model {model_id} ended {state}")

    def _deploy_unless_started(self, model_id: str) -> str | None:
        """The task id of a new deploy, or None when the model is deployed or deploying already."""
        if self.state(model_id) in (*DEPLOYED_STATES, "DEPLOYING"):
            return None
        return self.api.deploy_model(model_id=model_id)["task_id"]

    def state(self, model_id: str) -> str:
        return self.api.get_model(model_id=model_id).get("model_state", "")

    def wait_for_task(self, task_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            task = self.api.get_task(task_id=task_id)
            if task["state"] not in RUNNING_STATES:
                return task
            if time.monotonic() > deadline:
                raise MLCommonsError(f"task {task_id} still {task['state']} after {timeout:.0f}s")
            time.sleep(self.poll_seconds)

    def wait_while_deploying(self, model_id: str, timeout: float) -> str:
        """The model's state once it is no longer DEPLOYING (a deploy another request started)."""
        deadline = time.monotonic() + timeout
        while (state := self.state(model_id)) == "DEPLOYING":
            if time.monotonic() > deadline:
                raise MLCommonsError(f"model {model_id} still DEPLOYING after {timeout:.0f}s")
            time.sleep(self.poll_seconds)
        return state

    def predict(self, model_id: str, texts: list[str]) -> list[dict[str, float]]:
        """Token weights per text, as ML-Commons decodes them (``{token: weight}``)."""
        response = self.api.predict_model(model_id=model_id, body={"text_docs": texts})
        return [result["output"][0]["dataAsMap"]["response"][0] for result in response["inference_results"]]

    def worker_nodes(self, model_id: str) -> list[str]:
        """Names of the nodes the model is deployed on."""
        ids = self.api.get_model(model_id=model_id).get("planning_worker_nodes") or []
        if not ids:
            return []
        nodes = self.client.nodes.info(node_id=",".join(ids), filter_path="nodes.*.name")["nodes"]
        return sorted(node["name"] for node in nodes.values())

    def remove(self, model_id: str) -> None:
        """Undeploy and delete a model."""
        self.api.undeploy_model(model_id=model_id)
        self.api.delete_model(model_id=model_id)
