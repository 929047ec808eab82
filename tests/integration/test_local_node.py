"""opensearch/local.sh fails clearly (no Java, a taken port, an artifact that does not resolve or does not match
its pinned sha256, a node that does not come up) and, started as root, trusts nothing the node user can write."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import LOCAL_NODE, local_node


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def empty_maven(tmp_path) -> Iterator[str]:
    """An HTTP server with no artifacts at all."""
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/maven2"
    server.shutdown()


def test_no_java(tmp_path):
    result = local_node(
        "start",
        KO_SPARSE_OPENSEARCH_PORT=str(free_port()),
        KO_SPARSE_OPENSEARCH_CACHE=str(tmp_path),
        OPENSEARCH_JAVA_HOME="",
        JAVA_HOME="",
        JAVA_SEARCH_DIRS=str(tmp_path / "no-jdks"),
    )
    assert result.returncode == 1
    assert "needs Java 21 or newer; none found" in result.stderr


def test_env_user_is_a_name_not_a_pattern(tmp_path):
    versions = (LOCAL_NODE.parent / "versions.env").read_text()
    version = next(
        line.split("=")[1] for line in versions.splitlines() if line.startswith("SECURE_OPENSEARCH_VERSION=")
    )
    instance = tmp_path / "instances" / f"secure-{version}-9999"
    instance.mkdir(parents=True)
    (instance / "credentials").write_text("admin=secret-a\nko-sparse-reader=secret-r\n")
    env = dict(KO_SPARSE_OPENSEARCH_CACHE=str(tmp_path), KO_SPARSE_OPENSEARCH_PORT="9999")
    for pattern in (".*", "a.min", "a\\dmin"):
        result = local_node("env", "--profile", "secure", "--user", pattern, **env)
        assert (result.returncode, result.stdout) == (1, ""), pattern
    reader = local_node("env", "--profile", "secure", "--user", "ko-sparse-reader", **env)
    assert "OPENSEARCH_USER=ko-sparse-reader OPENSEARCH_PASSWORD=secret-r " in reader.stdout


def test_port_taken(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = local_node("start", KO_SPARSE_OPENSEARCH_PORT=str(port), KO_SPARSE_OPENSEARCH_CACHE=str(tmp_path))
    assert result.returncode == 1
    assert f"port {port} is already in use by another process" in result.stderr


def test_artifact_that_does_not_resolve(tmp_path, empty_maven):
    result = local_node(
        "start",
        KO_SPARSE_OPENSEARCH_PORT=str(free_port()),
        KO_SPARSE_OPENSEARCH_CACHE=str(tmp_path / "cache"),
        MAVEN_REPO=empty_maven,
    )
    assert result.returncode == 1
    assert "artifact org.opensearch.distribution.integ-test-zip:opensearch:3.6.0:zip does not resolve (HTTP 404" in (
        result.stderr
    )


def test_node_that_does_not_come_up_prints_why(opensearch_url):
    home = Path(local_node("home").stdout.strip())
    if not (home / ".ko-sparse-assembled").is_file():
        pytest.skip(f"no local node assembled in {home} (the tests use {opensearch_url})")
    result = local_node("start", KO_SPARSE_OPENSEARCH_PORT=str(free_port()), KO_SPARSE_OPENSEARCH_HEAP="lots")
    assert result.returncode == 1
    assert "Invalid initial heap size: -Xmslots" in result.stderr
    assert "the node did not start" in result.stderr


# ---- started as root, local.sh trusts nothing the node user can write (issue 12, item 8) ----
NODE_USER = "ko-sparse-opensearch"


def as_node_user(*command: str) -> None:
    subprocess.run(["runuser", "-u", NODE_USER, "--", *command], check=True)


def node_user_exists() -> bool:
    return os.geteuid() == 0 and subprocess.run(["id", "-u", NODE_USER], capture_output=True).returncode == 0


root_only = pytest.mark.skipif(not node_user_exists(), reason=f"needs root and the system user {NODE_USER}")


@pytest.fixture
def maven_with_a_forged_distribution(tmp_path) -> Iterator[str]:
    """A repository serving a well-formed zip under the 3.6.0 distribution's name, with no checksum file."""
    folder = tmp_path / "maven2/org/opensearch/distribution/integ-test-zip/opensearch/3.6.0"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "opensearch-3.6.0.zip", "w") as forged:
        forged.writestr("opensearch-3.6.0/bin/opensearch", "#!/bin/sh\necho forged\n")
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/maven2"
    server.shutdown()


def test_a_download_that_does_not_match_its_pinned_sha256_is_refused(tmp_path, maven_with_a_forged_distribution):
    cache = tmp_path / "cache"
    result = local_node(
        "start",
        KO_SPARSE_OPENSEARCH_PORT=str(free_port()),
        KO_SPARSE_OPENSEARCH_CACHE=str(cache),
        MAVEN_REPO=maven_with_a_forged_distribution,
    )
    assert result.returncode == 1
    assert "sha256 mismatch for org.opensearch.distribution.integ-test-zip:opensearch:3.6.0:zip" in result.stderr
    assert "the file was deleted" in result.stderr
    assert list((cache / "downloads").iterdir()) == []


def test_every_artifact_has_a_pinned_sha256():
    versions = (LOCAL_NODE.parent / "versions.env").read_text()
    table = versions.split('ARTIFACT_SHA256="')[1].split('"')[0]
    pins = dict(line.split()[::-1] for line in table.strip().splitlines())
    assert all(len(sha) == 64 and int(sha, 16) >= 0 for sha in pins.values())
    for name in ("opensearch-3.6.0.zip", "opensearch-2.19.1.zip", "opensearch-security-2.19.1.0.zip"):
        assert name in pins


@root_only
def test_stop_does_not_kill_a_process_named_in_a_forged_pid_file(tmp_path):
    """The pid file lives in a folder the node user writes: a pid in it is not proof of anything."""
    port = free_port()
    cache = tmp_path / "cache"
    run = cache / "instances" / f"3.6.0-{port}" / "run"
    run.mkdir(parents=True)
    victim = subprocess.Popen(["sleep", "300"], user=NODE_USER)  # the node user's, as a node's pid would be
    try:
        (run / "opensearch.pid").write_text(str(victim.pid))
        result = local_node("stop", KO_SPARSE_OPENSEARCH_PORT=str(port), KO_SPARSE_OPENSEARCH_CACHE=str(cache))
        assert result.returncode == 0, result.stderr
        assert "not running" in result.stderr
        assert victim.poll() is None  # still alive
    finally:
        victim.kill()
        victim.wait()


@root_only
def test_symlinks_planted_by_the_node_user_do_not_redirect_roots_writes_or_reads(opensearch_url, tmp_path):
    """Everything root wrote or read inside the instance (stdout.log, the JNI library, the node's log) was
    in folders the node user owns; it plants symlinks there before a start, as a compromised node could."""
    home = Path(local_node("home").stdout.strip())
    if not (home / ".ko-sparse-assembled").is_file():
        pytest.skip(f"no local node assembled in {home} (the tests use {opensearch_url})")
    port, transport = free_port(), free_port()
    cache = os.environ.get("KO_SPARSE_OPENSEARCH_CACHE", "/var/cache/ko-sparse/opensearch")
    env = {
        "KO_SPARSE_OPENSEARCH_PORT": str(port),
        "KO_SPARSE_OPENSEARCH_TRANSPORT_PORT": str(transport),
        "KO_SPARSE_OPENSEARCH_CACHE": cache,
        "KO_SPARSE_OPENSEARCH_HEAP": "512m",
    }
    instance = Path(cache) / "instances" / f"3.6.0-{port}"
    secret = tmp_path / "root-only.txt"
    secret.write_text("root's secret\n")
    secret.chmod(0o600)
    targets = {
        "run/stdout.log": secret,
        "data/ml_cache/pytorch/2.5.1-cpu-linux-x86_64/0.31.1-libdjl_torch.so": secret,
        "run/logs/ko-sparse-dev.log": secret,
        "logs/ko-sparse-dev.log": secret,
    }
    try:
        for folder in ("run/logs", "logs", "data/ml_cache/pytorch/2.5.1-cpu-linux-x86_64"):
            (instance / folder).mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", NODE_USER, str(instance)], check=True)  # as an earlier start left it
        for link, target in targets.items():
            as_node_user("ln", "-sf", str(target), str(instance / link))
        started = local_node("start", **env)
        logs = local_node("logs", **env)
        local_node("stop", **env)
        assert secret.read_text() == "root's secret\n"
        assert "root's secret" not in logs.stdout + logs.stderr
        assert started.returncode == 0, started.stderr
    finally:
        local_node("purge", **env)
        subprocess.run(["rm", "-rf", str(instance)], check=False)
