"""Packaging and registration cost: ``ko-sparse package`` and ``ko-sparse register`` against what a user
would otherwise run, each command in its own process (wall time, and peak resident memory from
``ru_maxrss``), the two sides alternating.

- ``package_seconds`` / ``package_peak_memory``: ``ko-sparse package`` (bi mode: trace, verification of
  the trace against the eager model at other batch sizes and lengths, the zip streamed from the trace
  file) against the steps of OpenSearch's documentation and of opensearch-py-ml's ``save_as_pt`` done by
  hand (``hand_package``: load, ``torch.jit.trace``, ``torch.jit.save``, zip with ``tokenizer.json``; no
  verification). opensearch-py-ml's own model classes cannot be the peer: ``opensearch_py_ml.ml_models``
  does not import with transformers 5 (it imports ``transformers.convert_graph_to_onnx``, removed).
- ``register_seconds`` / ``register_peak_memory``: ``ko-sparse register`` (preflight, chunked upload with
  retries, deploy, ``_predict`` checked against Python) against opensearch-py-ml's
  ``MLCommonClient.register_model`` (chunked upload, deploy, wait), the same zip and model config. Both
  models are undeployed and deleted after every repeat, so every run uploads.
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import torch
from opensearchpy.exceptions import ConflictError

from benchmarks.cluster import connection_options, node, remove_models
from benchmarks.common import FULL_MODEL, arguments, measured_process, report, tiny_encoder
from ko_sparse.export.package import Manifest
from ko_sparse.opensearch.client import PASSWORD_ENV, resolve
from ko_sparse.opensearch.ml_commons import MLCommons

ROOT = Path(__file__).resolve().parent.parent
PEER_GROUP = "ko-sparse-benchmarks-peer"


class SpladeForTrace(torch.nn.Module):
    """The SPLADE document encoder with ML-Commons' signature, as a user writes it for ``torch.jit.trace``."""

    def __init__(self, mlm: torch.nn.Module) -> None:
        super().__init__()
        self.mlm = mlm

    def forward(self, input: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = input["attention_mask"]
        logits = self.mlm(input_ids=input["input_ids"], attention_mask=mask).logits
        weights = torch.log1p(torch.relu(logits)) * mask.unsqueeze(-1)
        return {"output": weights.max(dim=1).values}


def hand_package(model_dir: str, output: str, max_length: str) -> None:
    """The peer of ``ko-sparse package``: trace, save, zip (``python -c`` entry point)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    mlm = AutoModelForMaskedLM.from_pretrained(model_dir, attn_implementation="eager").float().eval()
    example = tokenizer(
        ["당뇨병 치료에 좋은 음식은 무엇인가요?", "고혈압"], padding=True, truncation=True,
        max_length=int(max_length), return_tensors="pt",
    )  # fmt: skip
    inputs = {"input_ids": example["input_ids"], "attention_mask": example["attention_mask"]}
    with torch.no_grad():
        traced = torch.jit.trace(SpladeForTrace(mlm).eval(), (inputs,), strict=False, check_trace=False)
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(folder / "model.pt"))
    tokenizer.save_pretrained(folder / "tokenizer")
    with zipfile.ZipFile(folder / "model.zip", "w") as archive:
        archive.write(folder / "model.pt", "model.pt")
        archive.write(folder / "tokenizer" / "tokenizer.json", "tokenizer.json")


def peer_register(host: str, user: str, ca_certs: str, insecure: str, model_zip: str, config: str, group: str) -> None:
    """The peer of ``ko-sparse register``: opensearch-py-ml's ``register_model`` (``python -c`` entry point)."""
    from opensearch_py_ml.ml_commons import MLCommonClient

    connection = resolve(host, user or None, ca_certs or None, insecure == "1")
    model_id = MLCommonClient(connection.client()).register_model(model_zip, config, group, deploy_model=True)
    print(model_id)


def python_call(function: str, *arguments: str) -> list[str]:
    """A command that runs ``benchmarks.delivery.<function>(*arguments)`` in a fresh interpreter."""
    code = f"import sys; from benchmarks.delivery import {function}; {function}(*sys.argv[1:])"
    return [sys.executable, "-c", code, *arguments]


def model_group(ml: MLCommons, name: str) -> str:
    """A fresh model group for the peer's models (ML-Commons names groups uniquely)."""
    return ml.api.register_model_group(body={"name": name})["model_group_id"]


def delete_group(ml: MLCommons, group: str, attempts: int = 30) -> None:
    """Delete the peer's model group and any model left in it (a failed run); ML-Commons sees deleted models
    for a moment after (409 until then)."""
    query = {"bool": {"filter": {"term": {"model_group_id": group}}, "must_not": {"exists": {"field": "chunk_number"}}}}
    left = ml.api.search_models(body={"query": query, "size": 100})["hits"]["hits"]
    remove_models(ml, [model["_id"] for model in left])
    for _ in range(attempts):
        try:
            ml.api.delete_model_group(model_group_id=group)
            return
        except ConflictError:
            time.sleep(1)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny:64x2")
    spec, max_length = ("tiny:64x2", 256) if args.quick else (FULL_MODEL, 512)
    connection = resolve(args.host, args.user, args.ca_certs, args.insecure, getpass.getpass)
    environment = {**os.environ, **({PASSWORD_ENV: connection.password} if connection.password else {})}
    with tempfile.TemporaryDirectory() as work, node(connection) as client:
        model_dir, ours, theirs = Path(work, "model"), Path(work, "package"), Path(work, "by-hand")
        tiny_encoder(spec, max_length, torch.device("cpu")).save(str(model_dir))
        package = [sys.executable, "-m", "ko_sparse", "package", str(model_dir), "--output", str(ours)]
        package += ["--max-length", str(max_length), "--overwrite"]
        peer_package = python_call("hand_package", str(model_dir), str(theirs), str(max_length))
        packaged, packaged_by_hand = [], []
        for _ in range(args.repeat):
            packaged.append(measured_process(package, cwd=ROOT))
            packaged_by_hand.append(measured_process(peer_package, cwd=ROOT))
        artifact = Manifest.load(ours).artifacts[0]
        zip_path, config = ours / artifact.file, ours / artifact.config_file
        ml = MLCommons(client)
        group = model_group(ml, f"{PEER_GROUP}-{uuid.uuid4().hex[:8]}")
        register = [sys.executable, "-m", "ko_sparse", "register", *connection_options(connection)]
        register += ["--model", str(ours), "--model-group", "ko-sparse-benchmarks", "--configure-cluster"]
        peer = python_call(
            "peer_register", connection.host, connection.user or "", connection.ca_certs or "",
            "1" if connection.insecure else "0", str(zip_path), str(config), group,
        )  # fmt: skip
        registered, registered_by_peer = [], []
        try:
            for _ in range(args.repeat):
                registered.append(measured_process([*register, "--json"], env=environment, cwd=ROOT))
                remove_models(ml, [registered[-1].json()["models"][0]["model_id"]])
                registered_by_peer.append(measured_process(peer, env=environment, cwd=ROOT))
                remove_models(ml, [registered_by_peer[-1].stdout.split()[-1]])
        finally:
            delete_group(ml, group)
    shape = dict(model=spec, max_length=max_length, zip_bytes=artifact.size)
    for name, ours_runs, peer_runs, peer in (
        ("package", packaged, packaged_by_hand, "trace + torch.jit.save + zip by hand (no verification)"),
        ("register", registered, registered_by_peer, "opensearch-py-ml MLCommonClient.register_model (+ deploy)"),
    ):
        seconds, peer_seconds = [run.seconds for run in ours_runs], [run.seconds for run in peer_runs]
        report(f"{name}_seconds", seconds, "s", peer, peer_seconds, higher_is_better=False, **shape)
        memory, peer_memory = [run.peak_mb for run in ours_runs], [run.peak_mb for run in peer_runs]
        report(f"{name}_peak_memory", memory, "MB peak RSS", peer, peer_memory, higher_is_better=False, **shape)


if __name__ == "__main__":
    main()
