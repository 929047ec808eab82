"""ko-sparse package --format onnx: the graph ML-Commons' ONNX Runtime loads, the same values as the
eager model and as TorchScript, one verification for both formats, and local encoding through it."""

from __future__ import annotations

import builtins
import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.export import package as package_module
from ko_sparse.export.onnx_export import INPUT_NAMES, IR_VERSION, OPSET
from ko_sparse.export.package import Manifest, PackagingError, package_model
from ko_sparse.export.reference import sparse_encoding_weights
from ko_sparse.export.verification import Verification
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.onnx_runtime import OnnxRuntimeMissing, OnnxSparseModel
from ko_sparse.model.splade import load_encoder, special_token_ids
from tests.conftest import KOREAN_SENTENCES

onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_mlm_dir):
    path = tmp_path_factory.mktemp("model") / "tiny"
    load_encoder(tiny_mlm_dir).save(str(path))
    return path


@pytest.fixture(scope="module")
def onnx_package(saved_model, tmp_path_factory):
    output = tmp_path_factory.mktemp("onnx-package")
    manifest, verification = package_model(saved_model, output, max_length=48, name="ko-onnx", model_format="onnx")
    return output, manifest, verification


def model_file(output, manifest) -> bytes:
    with zipfile.ZipFile(output / manifest.artifacts[0].file) as zipped:
        assert sorted(zipped.namelist()) == ["ko-onnx.onnx", "tokenizer.json"]
        return zipped.read("ko-onnx.onnx")


def test_onnx_zip_and_config_say_onnx(onnx_package):
    output, manifest, verification = onnx_package
    (artifact,) = manifest.artifacts
    config = json.loads((output / artifact.config_file).read_text())
    assert config["model_format"] == artifact.model_format == "ONNX"
    assert config["function_name"] == "SPARSE_ENCODING"
    assert Manifest.load(output) == manifest
    assert verification.summary().startswith("ONNX Runtime verification OK")
    assert "| ONNX |" in (output / "README.md").read_text()


def test_graph_has_what_ml_commons_onnx_runtime_loads(onnx_package):
    graph = onnx.load_from_string(model_file(*onnx_package[:2]))
    assert graph.ir_version == IR_VERSION == 9
    assert {(o.domain, o.version) for o in graph.opset_import} == {("", OPSET)}
    assert tuple(i.name for i in graph.graph.input) == INPUT_NAMES == ("input1.input_ids", "input1.attention_mask")
    assert [o.name for o in graph.graph.output] == ["output"]
    for tensor in [*graph.graph.input, *graph.graph.output]:
        batch, second = tensor.type.tensor_type.shape.dim
        assert batch.dim_param and not batch.dim_value  # dynamic batch
        assert second.dim_param if tensor in graph.graph.input else second.dim_value == 50000
    layer_norms = [node for node in graph.graph.node if node.op_type == "LayerNormalization"]
    assert layer_norms and all(len(node.input) == 3 for node in layer_norms)  # ORT 1.16 aborts without a bias


def test_onnx_runtime_equals_the_eager_model_at_other_shapes(onnx_package, saved_model):
    output, manifest, verification = onnx_package
    assert verification.passed and verification.max_relative_error <= 1e-4 and verification.top_tokens_equal
    assert {shape[0] for shape in verification.cases} >= {1, 3, 5}
    encoder = load_encoder(saved_model, max_length=48)
    features = encoder.tokenizer(KOREAN_SENTENCES[:4], padding=True, return_tensors="np")
    values = OnnxSparseModel(model_file(output, manifest))(features["input_ids"], features["attention_mask"])
    assert values.shape == (4, 50000) and values.dtype == np.float32
    assert (values >= 0).all() and values[:, special_token_ids(encoder.tokenizer)].sum() == 0
    expected = encode_sparse(encoder, KOREAN_SENTENCES[:4]).toarray()
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-5)
    assert (np.argsort(-values)[:, :20] == np.argsort(-expected)[:, :20]).all()


def test_reference_runs_the_onnx_zip_like_the_torchscript_zip(onnx_package, saved_model, tmp_path):
    output, manifest, _ = onnx_package
    torchscript, _ = package_model(saved_model, tmp_path, max_length=48, name="ko-ts")
    onnx_weights = sparse_encoding_weights((output / manifest.artifacts[0].file).read_bytes(), KOREAN_SENTENCES)
    ts_weights = sparse_encoding_weights((tmp_path / torchscript.artifacts[0].file).read_bytes(), KOREAN_SENTENCES)
    for ours, theirs in zip(onnx_weights, ts_weights, strict=True):
        top = max(theirs.values())
        assert set(ours) == set(theirs)
        assert max(abs(ours[key] - weight) for key, weight in theirs.items()) <= 1e-4 * top


def test_both_formats_share_one_verification(saved_model, tmp_path, monkeypatch):
    seen = []

    def failing(exported, module, encoder, max_length, runtime):
        seen.append(runtime)
        return Verification([(1, 4)], 0.5, False, runtime)

    monkeypatch.setattr(package_module, "verify", failing)
    with pytest.raises(PackagingError, match="ONNX Runtime verification FAILED"):
        package_model(saved_model, tmp_path / "onnx", max_length=48, model_format="onnx")
    with pytest.raises(PackagingError, match="TorchScript trace verification FAILED"):
        package_model(saved_model, tmp_path / "ts", max_length=48)
    assert seen == ["ONNX Runtime", "TorchScript trace"]
    assert not (tmp_path / "onnx").exists() and not (tmp_path / "ts").exists()


def test_encode_sparse_through_onnx_runtime_equals_torch(onnx_package, saved_model):
    output, manifest, _ = onnx_package
    encoder = load_encoder(saved_model, max_length=48)
    texts = KOREAN_SENTENCES * 3  # several batches of mixed lengths
    runtime = OnnxSparseModel(model_file(output, manifest))
    ours = encode_sparse(encoder, texts, batch_size=4, onnx=runtime).toarray()
    np.testing.assert_allclose(ours, encode_sparse(encoder, texts, batch_size=4).toarray(), rtol=1e-4, atol=1e-5)


def test_package_cli_format_onnx(saved_model, tmp_path):
    command = ["package", str(saved_model), "--output", str(tmp_path), "--max-length", "32", "--format", "onnx"]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert "ONNX Runtime verification OK" in result.output and "[torch.onnx]" not in result.output
    assert Manifest.load(tmp_path).artifacts[0].model_format == "ONNX"


def test_packages_written_before_onnx_still_load(saved_model, tmp_path):
    package_model(saved_model, tmp_path, max_length=32, name="old")
    manifest = json.loads((tmp_path / "package.json").read_text())
    del manifest["artifacts"][0]["model_format"]
    (tmp_path / "package.json").write_text(json.dumps(manifest))
    assert Manifest.load(tmp_path).artifacts[0].ml_commons_config()["model_format"] == "TORCH_SCRIPT"


def test_missing_onnxruntime_is_a_one_line_error(monkeypatch):
    real_import = builtins.__import__

    def without_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnxruntime)
    with pytest.raises(OnnxRuntimeMissing, match=r"pip install 'ko-sparse\[onnx\]'"):
        OnnxSparseModel(b"")


def test_bench_runtime_onnx_encodes_with_onnx_runtime_and_ranks_like_torch(saved_model, tmp_path):
    from tests.test_bench import SMALL

    beir = tmp_path / "small"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in SMALL.corpus.items())
    )
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in SMALL.queries.items())
    )
    qrels = [f"{q}\t{d}\t{s}" for q, judged in SMALL.qrels.items() for d, s in judged.items()]
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n")
    payloads = {}
    for runtime in ("torch", "onnx"):
        command = ["bench", "--index", str(beir), "--model", str(saved_model), "--systems", "sparse"]
        output = tmp_path / runtime
        command += ["--max-length", "32", "--runtime", runtime, "--output", str(output)]
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, result.output
        payloads[runtime] = json.loads((output / "results.json").read_text())
    torch_system, onnx_system = (payloads[r]["systems"][0] for r in ("torch", "onnx"))
    assert onnx_system["index"]["details"]["encoded_by"] == "onnxruntime"
    assert torch_system["index"]["details"]["encoded_by"] == "torch"
    assert onnx_system["per_query"] == torch_system["per_query"]  # the same rankings
    assert payloads["onnx"]["settings"]["runtime"] == "onnx"
    assert any("onnxruntime" in note and "verification OK" in note for note in payloads["onnx"]["settings"]["notes"])
