"""Register packaged models on a cluster: settings, model group, idempotent upload, deploy, smoke test."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch, RequestError, TransportError

from ko_sparse.errors import ClusterError
from ko_sparse.export.package import Artifact, Manifest
from ko_sparse.export.reference import REFERENCES
from ko_sparse.opensearch.ml_commons import ML, MLCommons, MLCommonsError, ModelArtifact
from ko_sparse.opensearch.preflight import ClusterFacts, SettingChange

SMOKE_TEXTS = [
    "당뇨병 치료에 좋은 음식은 무엇인가요?",
    "서울에서 부산까지 기차로 얼마나 걸려?",
    "고혈압 약은 언제 먹어야 하나요",
]
DEPLOYED_STATES = ("DEPLOYED", "PARTIALLY_DEPLOYED")
# a model in these states has all its chunks: a re-run may reuse it (REGISTERING ones are half uploaded)
COMPLETE_STATES = ("REGISTERED", "DEPLOYING", "UNDEPLOYED", "DEPLOY_FAILED", *DEPLOYED_STATES)
ACCESS_MODES = ("public", "private", "restricted")
# what libtorch says when it cannot read or run a TorchScript file made by a newer torch
LOAD_FAILURES = ("unknown builtin op", "unknown type name", "pytorchstreamreader", "version_ <=", "schema not found")


class RegistrationError(ClusterError):
    """Registration cannot go on; the message says what the cluster said and what to do."""


def apply_settings(client: OpenSearch, changes: list[SettingChange]) -> None:
    """Set the needed values as persistent cluster settings."""
    client.cluster.put_settings(body={"persistent": {change.setting: change.needed for change in changes}})


@dataclass(frozen=True)
class RegisteredModel:
    artifact: Artifact
    model_id: str
    reused: bool


class Registrar:
    """Registers the artifacts of one package in a model group, reusing what is already there."""

    def __init__(self, client: OpenSearch, progress: bool = True, deploy_timeout: float = 600) -> None:
        self.client = client
        self.ml = MLCommons(client)
        self.progress = progress
        self.deploy_timeout = deploy_timeout

    def model_group(self, name: str, access: str | None = None, backend_roles: tuple[str, ...] = ()) -> str:
        """The id of the model group called ``name``, created (with ``access``) if missing.

        An existing group is used only if it has the access asked for; it is never changed."""
        found = self.ml.request("POST", f"{ML}/model_groups/_search", {"query": {"term": {"name.keyword": name}}})
        hits = found["hits"]["hits"]
        if hits:
            self._check_access(name, hits[0]["_source"], access, backend_roles)
            return hits[0]["_id"]
        body: dict = {"name": name, "description": "Korean sparse models registered by ko-sparse"}
        if access:
            body["access_mode"] = access
            body["backend_roles"] = list(backend_roles)
        try:
            return self.ml.request("POST", f"{ML}/model_groups/_register", body)["model_group_id"]
        except RequestError as error:
            if "already being used" in str(error.info):
                raise RegistrationError(
                    f"a model group named {name!r} exists but this user cannot see it (model access control): "
                    "choose another --model-group, or ask its owner for access"
                ) from error
            raise

    @staticmethod
    def _check_access(name: str, group: dict, access: str | None, backend_roles: tuple[str, ...]) -> None:
        if access is None:
            return
        current = (group.get("access") or group.get("access_mode") or "").lower()
        roles = sorted(group.get("backend_roles") or [])
        if current != access or (access == "restricted" and roles != sorted(backend_roles)):
            raise RegistrationError(
                f"model group {name!r} exists with access {current or 'unset'} (backend roles {roles}), not "
                f"{access}{f' {sorted(backend_roles)}' if access == 'restricted' else ''}: ko-sparse does not change "
                "a group's access; choose another --model-group or change it with PUT _plugins/_ml/model_groups/<id>"
            )

    def find(self, sha256: str, group_id: str) -> dict | None:
        """A registered (not chunk, not failed) model with this content hash in the group."""
        query = {
            "bool": {
                "filter": [
                    {"term": {"model_content_hash_value": sha256}},
                    {"term": {"model_group_id": group_id}},
                    {"terms": {"model_state": list(COMPLETE_STATES)}},
                ],
                "must_not": [{"exists": {"field": "chunk_number"}}],
            }
        }
        found = self.ml.request("POST", f"{ML}/models/_search", {"query": query, "size": 1})
        hits = found["hits"]["hits"]
        return {"model_id": hits[0]["_id"], **hits[0]["_source"]} if hits else None

    def register(self, package_dir: Path, artifact: Artifact, group_id: str, force: bool) -> RegisteredModel:
        upload = ModelArtifact(
            package_dir / artifact.file,
            artifact.name,
            artifact.function_name,
            artifact.description,
            artifact.model_format,
        )
        if not upload.content.is_file() or upload.size != artifact.size or upload.sha256 != artifact.sha256:
            raise RegistrationError(
                f"{package_dir / artifact.file} does not match package.json (size or sha256 changed); "
                "re-run ko-sparse package"
            )
        existing = None if force else self.find(artifact.sha256, group_id)
        if existing is not None:
            return RegisteredModel(artifact, existing["model_id"], reused=True)
        model_id = self.ml.register(upload, group_id, progress=self.progress, on_failure=self.remove)
        return RegisteredModel(artifact, model_id, reused=False)

    def remove(self, model_id: str) -> None:
        """Undeploy and delete a model this run registered (best effort: the original error matters more)."""
        for action in (self.ml.undeploy, self.ml.delete):
            with contextlib.suppress(TransportError):
                action(model_id)

    def deploy(self, registered: RegisteredModel, facts: ClusterFacts) -> list[str]:
        """Deploy (unless deployed) and return the names of the nodes serving the model.

        A model this run uploaded and the cluster cannot load or deploy is deleted again: nothing is left
        half-registered."""
        model_id = registered.model_id
        if self.ml.model(model_id).get("model_state") not in DEPLOYED_STATES:
            try:
                self.ml.deploy(model_id, self.deploy_timeout)
            except MLCommonsError as error:
                if not registered.reused:
                    self.remove(model_id)
                raise RegistrationError(deploy_failure(error, registered, facts)) from error
        return self.ml.worker_nodes(model_id)

    def smoke_test(self, package_dir: Path, registered: RegisteredModel, texts: list[str] = SMOKE_TEXTS) -> float:
        """Largest difference between the cluster's and Python's weights, relative to each text's largest
        weight (libtorch 1.13.1 and 2.x round differently in the last bits); raises on mismatched tokens."""
        expected = REFERENCES[registered.artifact.function_name](package_dir / registered.artifact.file, texts)
        actual = self.ml.predict(registered.model_id, texts)
        worst = 0.0
        for text, want, got in zip(texts, expected, actual, strict=True):
            scale = max([*want.values(), *got.values(), 1e-12])
            differ = {t for t in set(want) ^ set(got) if max(want.get(t, 0.0), got.get(t, 0.0)) > 1e-4 * scale}
            if differ:
                missing, extra = sorted(differ & set(want))[:5], sorted(differ & set(got))[:5]
                raise RegistrationError(
                    f"the cluster's tokens for {text!r} differ from Python's (missing {missing}, unexpected {extra})"
                )
            for token in set(want) | set(got):
                worst = max(worst, abs(got.get(token, 0.0) - want.get(token, 0.0)) / scale)
        if worst > 1e-3:
            raise RegistrationError(f"the cluster's token weights differ from Python's by up to {worst:.2%}")
        return worst


def deploy_failure(error: MLCommonsError, registered: RegisteredModel, facts: ClusterFacts) -> str:
    """One line: what the cluster said, and what to do about it."""
    message = str(error)
    lowered = message.lower()
    if any(sign in lowered for sign in LOAD_FAILURES):
        return (
            f"OpenSearch {facts.version} cannot load {registered.artifact.file}: its ML-Commons runs TorchScript on "
            f"libtorch {facts.libtorch}, which rejects this file ({message}). Files from `ko-sparse package` load on "
            "libtorch 1.13.1 (OpenSearch 2.x) and 2.5.1 (3.x); re-package the model with this ko-sparse"
            + ("" if registered.reused else "; the uploaded model was deleted")
        )
    if "circuit breaker" in lowered or "memory" in lowered:
        return (
            f"{message}. The node's memory circuit breaker refused the model: raise "
            "plugins.ml_commons.native_memory_threshold / jvm_heap_memory_threshold or add memory."
        )
    if "content changed" in lowered:
        return f"{message}. The uploaded chunks do not match the sha256 (hash mismatch): re-run with --force."
    return message


def load_package(path: str | Path) -> tuple[Path, Manifest]:
    package_dir = Path(path)
    return package_dir, Manifest.load(package_dir)
