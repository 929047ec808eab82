"""Every way a real cluster refuses ko-sparse ends in one line that says what to do, exit code 1, and
nothing half-registered: untrusted certificate, http/https mismatch, wrong password, a user without ML
permissions, missing plugins, a libtorch that cannot load the file; and model groups' access modes."""

from __future__ import annotations

import io
import json
import socket
import uuid
import zipfile
from collections.abc import Iterator
from typing import Dict  # noqa: UP035 - TorchScript needs typing.Dict

import pytest
import torch
from opensearchpy import AuthorizationException

from ko_sparse.export.package import Artifact, Manifest
from ko_sparse.opensearch.ml_commons import MLCommons
from ko_sparse.resources import TOKENIZER_DIR
from tests.integration.conftest import Cluster, delete_model_group, local_node, profile_cluster
from tests.integration.parity import invoke


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def secure(request) -> Cluster:
    """The secure profile when it is up (2.19.1, HTTPS, users, model access control)."""
    if local_node("status", "--profile", "secure").returncode != 0:
        pytest.skip("profile secure is not running: opensearch/local.sh start --profile secure")
    return profile_cluster("secure")


def groups_named(cluster: Cluster, name: str) -> list[dict]:
    found = cluster.client().plugins.ml.search_model_group(body={"query": {"term": {"name.keyword": name}}})
    return found["hits"]["hits"]


@pytest.fixture
def fresh_group(secure) -> Iterator[str]:
    name = f"ko-sparse-test-errors-{uuid.uuid4().hex[:8]}"
    yield name
    delete_model_group(MLCommons(secure.client()), name)


@pytest.fixture(scope="module")
def package(packages):
    return packages / "bi"


def refused(cluster: Cluster, *arguments: str) -> str:
    """The one-line error a refused command ends with (progress lines may come before it)."""
    result = invoke(cluster, *arguments)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    return result.output.strip().splitlines()[-1]


# ------------------------------------------------------------------------------------ TLS and users
@pytest.mark.secure
def test_an_untrusted_certificate_asks_for_ca_certs_and_never_goes_insecure(secure, package, fresh_group):
    without_ca = Cluster(secure.profile, secure.url, secure.user, secure.password)
    message = refused(without_ca, "register", "--model", str(package), "--model-group", fresh_group)
    assert message == (
        f"Error: the certificate of {secure.url} is not trusted (unable to get local issuer certificate): give the CA "
        "that signed it with --ca-certs FILE.pem (or $OPENSEARCH_CA_CERTS). --insecure would skip the check; "
        "ko-sparse never does that unless you ask"
    )
    assert groups_named(secure, fresh_group) == []


@pytest.mark.secure
def test_http_to_an_https_port_and_https_to_an_http_port(secure, opensearch_url, package):
    plain = Cluster(secure.profile, secure.url.replace("https://", "http://"), secure.user, secure.password)
    assert refused(plain, "register", "--model", str(package)) == (
        f"Error: {plain.url} speaks HTTPS, not HTTP: use --host {secure.url}"
    )
    tls = Cluster("default", opensearch_url.replace("http://", "https://"))
    assert refused(tls, "register", "--model", str(package)) == (
        f"Error: {tls.url} speaks plain HTTP, not HTTPS: use --host {opensearch_url}"
    )


@pytest.mark.secure
def test_a_wrong_password_is_a_401(secure, package):
    wrong = Cluster(secure.profile, secure.url, secure.user, "not-the-password", secure.ca_certs)
    assert refused(wrong, "register", "--model", str(package)) == (
        f"Error: {secure.url} answered 401 Unauthorized: wrong password for user 'admin' (or no such user); "
        "check $OPENSEARCH_PASSWORD"
    )


@pytest.mark.secure
def test_a_user_without_ml_permissions_is_told_which_action_was_refused(secure, package, fresh_group):
    reader = secure.as_user("ko-sparse-reader")
    message = refused(reader, "register", "--model", str(package), "--model-group", fresh_group)
    assert message == (
        f"Error: {secure.url} answered 403 Forbidden: user 'ko-sparse-reader' may not run "
        "cluster:admin/opensearch/ml/register_model_group; it needs ML-Commons permissions "
        "(e.g. the ml_full_access role)"
    )
    assert groups_named(secure, fresh_group) == []  # nothing half-registered


# ------------------------------------------------------------------------------- model access control
@pytest.mark.secure
def test_restricted_and_public_model_groups(secure, package, fresh_group):
    reader = secure.as_user("ko-sparse-reader").client()
    restricted = json.loads(
        invoke(
            secure,
            "register",
            "--model",
            str(package),
            "--model-group",
            fresh_group,
            "--no-deploy",
            "--json",
            "--access",
            "restricted",
            "--backend-role",
            "ko-sparse-team",
        ).output
    )
    group = secure.client().plugins.ml.get_model_group(model_group_id=restricted["model_group_id"])
    assert (group["access"], group["backend_roles"]) == ("restricted", ["ko-sparse-team"])
    with pytest.raises(AuthorizationException):  # the reader has no ko-sparse-team backend role
        reader.plugins.ml.get_model(model_id=restricted["models"][0]["model_id"])
    other = invoke(secure, "register", "--model", str(package), "--model-group", fresh_group, "--access", "public")
    assert other.exit_code == 1
    assert (
        f"model group {fresh_group!r} exists with access restricted (backend roles ['ko-sparse-team']), not public"
        in (other.output)
    )
    public_name = f"{fresh_group}-public"
    try:
        public = json.loads(
            invoke(
                secure,
                "register",
                "--model",
                str(package),
                "--model-group",
                public_name,
                "--no-deploy",
                "--json",
                "--force",
                "--access",
                "public",
            ).output
        )
        model = reader.plugins.ml.get_model(model_id=public["models"][0]["model_id"])
        assert model["model_group_id"] == public["model_group_id"]
    finally:
        delete_model_group(MLCommons(secure.client()), public_name)


def test_access_modes_need_model_access_control(opensearch_url, package):
    message = refused(Cluster("default", opensearch_url), "register", "--model", str(package), "--access", "private")
    assert "has model access control off (plugins.ml_commons.model_access_control_enabled is false)" in message
    assert "drop --access" in message


# ----------------------------------------------------------------------------------- a model 2.x cannot load
class NewerOpsEncoder(torch.nn.Module):
    """Valid SPARSE_ENCODING signature, but it calls scaled_dot_product_attention (libtorch 2.0 and later)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, input: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:  # noqa: UP006
        mask = input["attention_mask"].to(torch.float32).unsqueeze(0).unsqueeze(-1)
        attended = torch.nn.functional.scaled_dot_product_attention(mask, mask, mask)
        return {"output": torch.zeros(mask.shape[1], self.vocab_size) * attended.sum()}


@pytest.fixture(scope="module")
def newer_ops_package(tmp_path_factory):
    """A package folder like `ko-sparse package` writes, around a TorchScript file libtorch 1.13.1 rejects."""
    folder = tmp_path_factory.mktemp("newer-ops")
    tokenizer_json = (TOKENIZER_DIR / "tokenizer.json").read_bytes()
    vocab_size = len(json.loads(tokenizer_json)["model"]["vocab"])
    model = io.BytesIO()
    torch.jit.save(torch.jit.script(NewerOpsEncoder(vocab_size)), model)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("newer-ops.pt", model.getvalue())
        zipped.writestr("tokenizer.json", tokenizer_json)
    content = archive.getvalue()
    (folder / "newer-ops.zip").write_bytes(content)
    import hashlib

    artifact = Artifact(
        "newer-ops.zip",
        "newer-ops.config.json",
        "SPARSE_ENCODING",
        "ko-sparse-test-newer-ops",
        "uses an operator libtorch 1.13.1 lacks",
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    Manifest("newer-ops", "bi", "test", 64, 0.0, [artifact], "not verified").save(folder)
    return folder


@pytest.mark.secure
def test_a_2x_cluster_given_a_model_its_libtorch_cannot_load(secure, newer_ops_package, fresh_group):
    message = refused(secure, "register", "--model", str(newer_ops_package), "--model-group", fresh_group)
    assert message.startswith(
        "Error: OpenSearch 2.19.1 cannot load newer-ops.zip: its ML-Commons runs TorchScript on libtorch 1.13.1, "
        "which rejects this file ("
    )
    assert "Unknown builtin op: aten::scaled_dot_product_attention" in message
    assert message.endswith("; the uploaded model was deleted")
    assert groups_named(secure, fresh_group) == []  # the run created the group and its model: both undone


# ------------------------------------------------------------------------------------- missing plugins
@pytest.fixture(params=["none", "opensearch-job-scheduler opensearch-ml-plugin"], ids=["bare", "no-neural-search"])
def node_without(request) -> Iterator[tuple[str, Cluster]]:
    """A 3.6 node on free ports with only some of the plugins (assembled once, then cached)."""
    env = {
        "KO_SPARSE_OPENSEARCH_PORT": str(free_port()),
        "KO_SPARSE_OPENSEARCH_TRANSPORT_PORT": str(free_port()),
        "KO_SPARSE_OPENSEARCH_PLUGINS": request.param,
        "KO_SPARSE_OPENSEARCH_HEAP": "512m",
    }
    started = local_node("start", **env)
    try:
        assert started.returncode == 0, started.stderr
        yield request.param, Cluster("default", f"http://127.0.0.1:{env['KO_SPARSE_OPENSEARCH_PORT']}")
    finally:
        local_node("purge", **env)


def test_missing_ml_commons_or_neural_search_is_named(node_without, package):
    plugins, node = node_without
    message = refused(node, "register", "--model", str(package), "--pipeline", "p", "--index", "i")
    missing = "opensearch-ml (ML-Commons" if plugins == "none" else "opensearch-neural-search (neural-search"
    assert f"{node.url} (OpenSearch 3.6.0) lacks the plugin {missing}" in message
    assert "Install it on every node" in message
    assert node.client().indices.exists(index="i") is False
