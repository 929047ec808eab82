"""Register packaged models on a cluster: settings, model group, idempotent upload, deploy, smoke test."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from opensearchpy import ConflictError, OpenSearch, RequestError

from ko_sparse.errors import ClusterError
from ko_sparse.export.package import Artifact, Manifest
from ko_sparse.export.reference import REFERENCES
from ko_sparse.opensearch.ml_commons import DEPLOYED_STATES, MLCommons, MLCommonsError, ModelArtifact
from ko_sparse.opensearch.preflight import ClusterFacts, SettingChange
from ko_sparse.opensearch.undo import Undo

SMOKE_TEXTS = [
    "당뇨병 치료에 좋은 음식은 무엇인가요?",
    "서울에서 부산까지 기차로 얼마나 걸려?",
    "고혈압 약은 언제 먹어야 하나요",
]
# a model in these states has all its chunks: a re-run may reuse it (REGISTERING ones are half uploaded)
COMPLETE_STATES = ("REGISTERED", "DEPLOYING", "UNDEPLOYED", "DEPLOY_FAILED", *DEPLOYED_STATES)
ACCESS_MODES = ("public", "private", "restricted")
# what libtorch says when it cannot read or run a TorchScript file made by a newer torch
LOAD_FAILURES = ("unknown builtin op", "unknown type name", "pytorchstreamreader", "version_ <=", "schema not found")


class RegistrationError(ClusterError):
    """Registration cannot go on; the message says what the cluster said and what to do."""


def apply_settings(client: OpenSearch, changes: list[SettingChange], undo: Undo) -> None:
    """Set the needed values as persistent cluster settings; ``undo`` puts the previous persistent values back
    (unset ones are unset again)."""
    persistent = client.cluster.get_settings(flat_settings=True)["persistent"]
    previous = {change.setting: persistent.get(change.setting) for change in changes}
    undo.record(
        "changed cluster settings: " + "; ".join(str(change) for change in changes),
        lambda: client.cluster.put_settings(body={"persistent": previous}),
    )
    client.cluster.put_settings(body={"persistent": {change.setting: change.needed for change in changes}})


@dataclass(frozen=True)
class RegisteredModel:
    artifact: Artifact
    model_id: str
    reused: bool


class Registrar:
    """Registers the artifacts of one package in a model group, reusing what is already there.

    What it creates (a model group, uploaded models, deployments of reused models) is recorded in ``undo``."""

    def __init__(
        self, client: OpenSearch, progress: bool = True, deploy_timeout: float = 600, undo: Undo | None = None
    ) -> None:
        self.client = client
        self.ml = MLCommons(client)
        self.progress = progress
        self.deploy_timeout = deploy_timeout
        self.undo = undo if undo is not None else Undo(lambda _: None)

    def existing_group(self, name: str, access: str | None = None, backend_roles: tuple[str, ...] = ()) -> str | None:
        """The id of the model group called ``name``, if there is one; it must have the access asked for."""
        found = self.ml.api.search_model_group(body={"query": {"term": {"name.keyword": name}}})
        hits = found["hits"]["hits"]
        if not hits:
            return None
        self._check_access(name, hits[0]["_source"], access, backend_roles)
        return hits[0]["_id"]

    def model_group(self, name: str, access: str | None = None, backend_roles: tuple[str, ...] = ()) -> str:
        """The id of the model group called ``name``, created (with ``access``) if missing.

        An existing group is used only if it has the access asked for; it is never changed."""
        existing = self.existing_group(name, access, backend_roles)
        if existing is not None:
            return existing
        body: dict = {"name": name, "description": "Korean sparse models registered by ko-sparse"}
        if access:
            body["access_mode"] = access
            body["backend_roles"] = list(backend_roles)
        try:
            group_id = self.ml.api.register_model_group(body=body)["model_group_id"]
        except RequestError as error:
            if "already being used" in str(error.info):
                raise RegistrationError(
                    f"a model group named {name!r} exists but this user cannot see it (model access control): "
                    "choose another --model-group, or ask its owner for access"
                ) from error
            raise
        self.undo.record(f"created model group {name}", lambda: self.delete_group(group_id))
        return group_id

    def delete_group(self, group_id: str, attempts: int = 10) -> None:
        """Delete an empty group; model deletions reach the group's version count with a delay."""
        for attempt in range(attempts):
            try:
                self.ml.api.delete_model_group(model_group_id=group_id)
                return
            except ConflictError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)

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
        """A registered (not chunk, not failed) model with this content hash in the group.

        Search finds the model document (written when its upload starts); its state is read by id, since
        search sees a state change only after the index refreshes (a re-run right after a registration
        would otherwise upload the model again)."""
        query = {
            "bool": {
                "filter": [
                    {"term": {"model_content_hash_value": sha256}},
                    {"term": {"model_group_id": group_id}},
                ],
                "must_not": [{"exists": {"field": "chunk_number"}}],
            }
        }
        found = self.ml.api.search_models(body={"query": query, "size": 100})
        for hit in found["hits"]["hits"]:
            model = self.ml.api.get_model(model_id=hit["_id"])
            if model.get("model_state") in COMPLETE_STATES:
                return {**model, "model_id": hit["_id"]}
        return None

    def to_upload(self, artifacts: list[Artifact], group_id: str | None, force: bool) -> list[Artifact]:
        """The artifacts ``register`` would upload (the others are reused)."""
        if force or group_id is None:
            return list(artifacts)
        return [artifact for artifact in artifacts if self.find(artifact.sha256, group_id) is None]

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
        model_id = self.ml.register(upload, group_id, progress=self.progress, created=self._record_upload)
        return RegisteredModel(artifact, model_id, reused=False)

    def _record_upload(self, model_id: str) -> None:
        self.undo.record(f"uploaded model {model_id}", lambda: self.ml.remove(model_id))

    def deploy(self, registered: RegisteredModel, facts: ClusterFacts) -> list[str]:
        """Deploy (unless deployed) and return the names of the nodes serving the model.

        Deploying a reused model is recorded (undone by undeploying it); a model this run uploaded is
        recorded already (undone by deleting it)."""
        model_id = registered.model_id
        if registered.reused and self.ml.state(model_id) not in DEPLOYED_STATES:
            self.undo.record(f"deployed model {model_id}", lambda: self.ml.api.undeploy_model(model_id=model_id))
        try:
            self.ml.deploy(model_id, self.deploy_timeout)
        except MLCommonsError as error:
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
