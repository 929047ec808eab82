"""Register packaged models on a cluster: settings, model group, idempotent upload, deploy, smoke test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from ko_sparse.export.package import Artifact, Manifest
from ko_sparse.export.reference import REFERENCES
from ko_sparse.opensearch.ml_commons import ML, MLCommons, MLCommonsError, ModelArtifact

SMOKE_TEXTS = [
    "당뇨병 치료에 좋은 음식은 무엇인가요?",
    "서울에서 부산까지 기차로 얼마나 걸려?",
    "고혈압 약은 언제 먹어야 하나요",
]
DEPLOYED_STATES = ("DEPLOYED", "PARTIALLY_DEPLOYED")


class RegistrationError(RuntimeError):
    """Registration cannot go on; the message says what the cluster said and what to do."""


@dataclass(frozen=True)
class SettingProblem:
    setting: str
    current: str
    needed: str
    why: str


def required_settings(client: OpenSearch) -> list[SettingProblem]:
    """ML settings that stop a chunked upload or a deploy on this cluster."""
    settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    merged = {**settings["defaults"], **settings["persistent"], **settings["transient"]}
    problems = []
    local_file = "plugins.ml_commons.allow_registering_model_via_local_file"
    if merged.get(local_file, "false") != "true":
        problems.append(SettingProblem(local_file, merged.get(local_file, "false"), "true", "chunked upload"))
    only_ml = "plugins.ml_commons.only_run_on_ml_node"
    roles = {role for node in client.nodes.info()["nodes"].values() for role in node.get("roles", [])}
    if "ml" not in roles and merged.get(only_ml, "true") != "false":
        problems.append(SettingProblem(only_ml, merged.get(only_ml, "true"), "false", "the cluster has no ml node"))
    return problems


def apply_settings(client: OpenSearch, problems: list[SettingProblem]) -> None:
    """Set the needed values as persistent cluster settings."""
    client.cluster.put_settings(body={"persistent": {p.setting: p.needed for p in problems}})


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

    def check_plugin(self) -> None:
        components = {row["component"] for row in self.client.cat.plugins(format="json")}
        if "opensearch-ml" not in components:
            raise RegistrationError(
                f"the cluster has no ML-Commons plugin (plugins: {sorted(components) or 'none'}); install "
                "opensearch-ml, or use opensearch/local.sh or docker-compose.yml"
            )

    def model_group(self, name: str) -> str:
        """The id of the model group called ``name``, created if missing."""
        found = self.ml.request("POST", f"{ML}/model_groups/_search", {"query": {"term": {"name.keyword": name}}})
        hits = found["hits"]["hits"]
        if hits:
            return hits[0]["_id"]
        body = {"name": name, "description": "Korean sparse models registered by ko-sparse"}
        return self.ml.request("POST", f"{ML}/model_groups/_register", body)["model_group_id"]

    def find(self, sha256: str, group_id: str) -> dict | None:
        """A registered (not chunk, not failed) model with this content hash in the group."""
        query = {
            "bool": {
                "filter": [
                    {"term": {"model_content_hash_value": sha256}},
                    {"term": {"model_group_id": group_id}},
                ],
                "must_not": [
                    {"exists": {"field": "chunk_number"}},
                    {"terms": {"model_state": ["REGISTER_FAILED"]}},
                ],
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
        model_id = self.ml.register(upload, group_id, progress=self.progress)
        return RegisteredModel(artifact, model_id, reused=False)

    def deploy(self, model_id: str) -> None:
        if self.ml.model(model_id).get("model_state") in DEPLOYED_STATES:
            return
        try:
            self.ml.deploy(model_id, self.deploy_timeout)
        except MLCommonsError as error:
            hint = ""
            if "circuit breaker" in str(error).lower() or "memory" in str(error).lower():
                hint = (
                    " The node's memory circuit breaker refused the model: raise "
                    "plugins.ml_commons.native_memory_threshold / jvm_heap_memory_threshold or add memory."
                )
            if "content changed" in str(error).lower():
                hint = " The uploaded chunks do not match the sha256 (hash mismatch): re-run with --force."
            raise RegistrationError(f"{error}.{hint}") from error

    def smoke_test(self, package_dir: Path, registered: RegisteredModel, texts: list[str] = SMOKE_TEXTS) -> float:
        """Largest relative weight difference between the cluster and Python; raises on mismatched tokens."""
        archive = (package_dir / registered.artifact.file).read_bytes()
        expected = REFERENCES[registered.artifact.function_name](archive, texts)
        actual = self.ml.predict(registered.model_id, texts)
        worst = 0.0
        for text, want, got in zip(texts, expected, actual, strict=True):
            if set(want) != set(got):
                missing, extra = sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]
                raise RegistrationError(
                    f"the cluster's tokens for {text!r} differ from Python's (missing {missing}, unexpected {extra})"
                )
            for token, weight in want.items():
                worst = max(worst, abs(got[token] - weight) / max(abs(weight), 1e-12))
        if worst > 1e-3:
            raise RegistrationError(f"the cluster's token weights differ from Python's by up to {worst:.2%}")
        return worst


def load_package(path: str | Path) -> tuple[Path, Manifest]:
    package_dir = Path(path)
    return package_dir, Manifest.load(package_dir)
