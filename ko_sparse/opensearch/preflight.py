"""What a cluster must have before ko-sparse registers, deploys or queries a model, checked before
anything is written: its plugins, ML nodes, ML settings and the libtorch its ML-Commons runs."""

from __future__ import annotations

from dataclasses import dataclass

from opensearchpy import OpenSearch

from ko_sparse.errors import ClusterError

ML_PLUGIN = "opensearch-ml"
NEURAL_PLUGIN = "opensearch-neural-search"
KNN_PLUGIN = "opensearch-knn"
PLUGIN_USES = {
    ML_PLUGIN: "ML-Commons, which registers, deploys and runs models",
    NEURAL_PLUGIN: "neural-search, which runs the sparse_encoding ingest processor and the neural_sparse query",
    KNN_PLUGIN: "k-NN, which stores knn_vector fields and runs the knn query (dense retrievers)",
}
LOCAL_FILE = "plugins.ml_commons.allow_registering_model_via_local_file"
ONLY_ML_NODE = "plugins.ml_commons.only_run_on_ml_node"
ACCESS_CONTROL = "plugins.ml_commons.model_access_control_enabled"
# ML-Commons sets DJL's PYTORCH_VERSION to these (DLModel); 2.11-2.14 ran DJL 0.21's default, 1.13.1
LIBTORCH = {2: "1.13.1", 3: "2.5.1"}


class ClusterNotReady(ClusterError):
    """The cluster lacks something ko-sparse needs; the message says what and how to get it."""


@dataclass(frozen=True)
class SettingChange:
    """A cluster setting that blocks the work, its value now and the value it needs."""

    setting: str
    current: str
    needed: str
    why: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.current} -> {self.needed} ({self.why})"


@dataclass(frozen=True)
class ClusterFacts:
    """The cluster as ko-sparse needs to know it, read once."""

    url: str
    version: str
    plugins: frozenset[str]
    ml_nodes: tuple[str, ...]
    settings: dict[str, str]

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def libtorch(self) -> str:
        """The libtorch ML-Commons of this version runs TorchScript with."""
        return LIBTORCH.get(self.major, "unknown")

    def setting(self, name: str, default: str) -> str:
        return self.settings.get(name, default)


def cluster_facts(client: OpenSearch, url: str) -> ClusterFacts:
    """Version, plugins on every node, the nodes with the ``ml`` role, and the effective settings."""
    version = client.info()["version"]["number"]
    plugins = frozenset(row["component"] for row in client.cat.plugins(format="json"))
    nodes = client.nodes.info(filter_path="nodes.*.name,nodes.*.roles")["nodes"].values()
    ml_nodes = tuple(sorted(node["name"] for node in nodes if "ml" in node.get("roles", [])))
    settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    merged = {**settings["defaults"], **settings["persistent"], **settings["transient"]}
    return ClusterFacts(url, version, plugins, ml_nodes, {key: str(value) for key, value in merged.items()})


def require_plugins(facts: ClusterFacts, *plugins: str) -> None:
    """Raise naming each missing plugin and what it is needed for."""
    missing = [plugin for plugin in plugins if plugin not in facts.plugins]
    if missing:
        needs = "; ".join(f"{plugin} ({PLUGIN_USES[plugin]})" for plugin in missing)
        raise ClusterNotReady(
            f"{facts.url} (OpenSearch {facts.version}) lacks the plugin {needs}; installed: "
            f"{', '.join(sorted(facts.plugins)) or 'none'}. Install it on every node "
            "(bin/opensearch-plugin install), or use opensearch/local.sh or docker-compose.yml"
        )


def settings_to_change(
    facts: ClusterFacts, upload: bool, deploy: bool, access: str | None, allow_models_on_data_nodes: bool
) -> list[SettingChange]:
    """What registering needs changed: local-file upload when a model is to be uploaded, and
    ``only_run_on_ml_node`` on a cluster without ML nodes only when ``allow_models_on_data_nodes``. Raises
    when the work cannot be done at all."""
    if access and facts.setting(ACCESS_CONTROL, "false") != "true":
        raise ClusterNotReady(
            f"--access {access}: {facts.url} has model access control off ({ACCESS_CONTROL} is false), so model "
            "groups have no access mode; ko-sparse does not turn it on (a security decision): drop --access"
        )
    changes = upload_settings(facts) if upload else []
    ml_node = ml_node_change(facts) if deploy else None
    if ml_node is not None and not allow_models_on_data_nodes:
        raise ClusterNotReady(
            f"{facts.url} has no ML node (a node with the ml role) and {ml_node.setting} is {ml_node.current}, so "
            "no model can deploy: add an ML node, register with --no-deploy, or let models run on data nodes with "
            "--configure-cluster --allow-models-on-data-nodes"
        )
    return changes + ([ml_node] if ml_node else [])


def upload_settings(facts: ClusterFacts) -> list[SettingChange]:
    """The only settings ``--configure-cluster`` changes: those a chunked local-file upload needs."""
    current = facts.setting(LOCAL_FILE, "false")
    if current == "true":
        return []
    return [SettingChange(LOCAL_FILE, current, "true", "ko-sparse uploads the model zip in chunks")]


def ml_node_change(facts: ClusterFacts) -> SettingChange | None:
    """With ``only_run_on_ml_node`` true and no node with the ``ml`` role, no model can deploy."""
    current = facts.setting(ONLY_ML_NODE, "true")
    if facts.ml_nodes or current == "false":
        return None
    return SettingChange(ONLY_ML_NODE, current, "false", "no ML node: models would run on data nodes")
