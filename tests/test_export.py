"""ko-sparse package: zip layout, model config, trace signature and values, IDF, token strings."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.export import package as package_module
from ko_sparse.export.package import Manifest, PackagingError, package_model
from ko_sparse.export.reference import sparse_encoding_weights, sparse_tokenize_weights
from ko_sparse.export.token_strings import TokenCollisionError, check_no_collisions, colliding_strings
from ko_sparse.export.verification import Verification, verify
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.splade import special_token_ids
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.ml_commons import ModelArtifact
from tests.conftest import KOREAN_SENTENCES


@pytest.fixture(scope="module")
def packaged(saved_model, tmp_path_factory):
    output = tmp_path_factory.mktemp("package")
    manifest, verification = package_model(saved_model, output, max_length=48, name="ko-sparse-test")
    return output, manifest, verification


def test_zip_is_flat_with_one_model_and_tokenizer(packaged):
    output, manifest, _ = packaged
    (artifact,) = manifest.artifacts
    with zipfile.ZipFile(output / artifact.file) as zipped:
        assert sorted(zipped.namelist()) == ["ko-sparse-test.pt", "tokenizer.json"]
        tokenizer_json = json.loads(zipped.read("tokenizer.json"))
    assert tokenizer_json["truncation"] == {
        "direction": "Right",
        "max_length": 48,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    assert tokenizer_json["normalizer"] == {"type": "NFC"}


def test_model_config_has_size_and_sha256_of_the_zip(packaged):
    output, manifest, _ = packaged
    (artifact,) = manifest.artifacts
    content = (output / artifact.file).read_bytes()
    config = json.loads((output / artifact.config_file).read_text())
    assert config == {
        "name": "ko-sparse-test-encoder",
        "version": "1.0.0",
        "description": artifact.description,
        "model_format": "TORCH_SCRIPT",
        "function_name": "SPARSE_ENCODING",
        "model_content_size_in_bytes": len(content),
        "model_content_hash_value": hashlib.sha256(content).hexdigest(),
    }
    assert Manifest.load(output) == manifest
    assert "ko-sparse register" in (output / "README.md").read_text()


def test_packaging_the_same_model_again_gives_the_same_bytes(saved_model, tmp_path):
    # separate processes, as users re-run it (TorchScript renames classes traced twice in one process)
    hashes = []
    for run in ("first", "second"):
        command = [sys.executable, "-m", "ko_sparse", "package", str(saved_model), "--output", str(tmp_path / run)]
        subprocess.run([*command, "--max-length", "48"], check=True, capture_output=True)
        hashes.append([a.sha256 for a in Manifest.load(tmp_path / run).artifacts])
    assert hashes[0] == hashes[1]  # so register recognises a re-packaged model instead of uploading it again


def test_trace_takes_a_dict_and_returns_the_encoder_vectors(packaged, saved_model):
    from ko_sparse.model.splade import load_encoder

    output, manifest, verification = packaged
    assert verification.passed and verification.max_relative_error <= 1e-4
    assert {shape[0] for shape in verification.cases} >= {1, 3, 5}
    with zipfile.ZipFile(output / manifest.artifacts[0].file) as zipped:
        module = torch.jit.load(io.BytesIO(zipped.read("ko-sparse-test.pt")))
    encoder = load_encoder(saved_model, max_length=48)
    features = encoder.tokenizer(KOREAN_SENTENCES, padding=True, return_tensors="pt")
    assert "token_type_ids" not in features
    result = module({"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]})
    assert list(result) == ["output"]
    values = result["output"]
    assert values.shape == (len(KOREAN_SENTENCES), 50000) and values.dtype == torch.float32
    assert (values >= 0).all() and values[:, special_token_ids(encoder.tokenizer)].sum() == 0
    expected = torch.from_numpy(encode_sparse(encoder, KOREAN_SENTENCES).toarray())
    torch.testing.assert_close(values, expected, rtol=1e-4, atol=1e-6)


def test_reference_decodes_like_ml_commons(packaged, saved_model):
    from ko_sparse.model.splade import load_encoder

    output, manifest, _ = packaged
    weights = sparse_encoding_weights((output / manifest.artifacts[0].file).read_bytes(), KOREAN_SENTENCES[:2])
    encoder = load_encoder(saved_model, max_length=48)
    vectors = encode_sparse(encoder, KOREAN_SENTENCES[:2])
    strings = token_strings(encoder.tokenizer)
    for row, expected in enumerate(weights):
        vector = vectors[row]
        assert expected == pytest.approx(
            {strings[i]: float(w) for i, w in zip(vector.indices, vector.data, strict=False)}, rel=1e-4, abs=1e-6
        )


def test_prune_ratio_drops_small_weights(saved_model, tmp_path):
    manifest, _ = package_model(saved_model, tmp_path, max_length=48, prune_ratio=0.5, name="pruned")
    archive = (tmp_path / manifest.artifacts[0].file).read_bytes()
    for weights in sparse_encoding_weights(archive, KOREAN_SENTENCES):
        values = np.array(list(weights.values()))
        assert values.min() > 0.5 * values.max()


def test_doc_only_adds_a_tokenizer_model_with_idf(saved_model, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in ["당뇨병 치료", "당뇨병 예방", "고혈압 치료"]
        ),
        encoding="utf-8",
    )
    manifest, _ = package_model(saved_model, tmp_path / "out", mode="doc-only", max_length=48, idf_corpus=corpus)
    tokenize = manifest.artifact("SPARSE_TOKENIZE")
    with zipfile.ZipFile(tmp_path / "out" / tokenize.file) as zipped:
        assert sorted(zipped.namelist()) == ["idf.json", "tokenizer.json"]
        idf = json.loads(zipped.read("idf.json"))
    assert idf["혈압"] > idf["당뇨병"] > 0  # df 1 vs 2 of 3
    assert idf["감기"] == max(idf.values())  # unseen tokens get the highest weight
    assert "" not in idf and "<pad>" not in idf and len(idf) == 50000 - 38
    weights = sparse_tokenize_weights((tmp_path / "out" / tokenize.file).read_bytes(), ["당뇨병 치료"])
    assert weights == [{"당뇨병": idf["당뇨병"], "치료": idf["치료"]}]
    with pytest.raises(PackagingError, match="--idf-corpus"):
        package_model(saved_model, tmp_path / "again", mode="doc-only", max_length=48)


def test_failed_verification_writes_nothing(saved_model, tmp_path, monkeypatch):
    monkeypatch.setattr(package_module, "verify", lambda *args: Verification([(1, 4)], 0.5, False))
    with pytest.raises(PackagingError, match="trace verification FAILED"):
        package_model(saved_model, tmp_path / "out", max_length=48)
    assert not (tmp_path / "out").exists()


def test_verification_compares_only_the_non_zero_top_tokens(tokenizer):
    def weights(inputs, noise=0.0, top=(5, 7, 9)):
        rows = torch.zeros(len(inputs["input_ids"]), 40)
        rows[:, 30:] = noise  # far below the error tolerance, but above the exact zeros
        rows[:, list(top)] = torch.tensor([3.0, 2.0, 1.0])
        return rows

    encoder = types.SimpleNamespace(tokenizer=tokenizer)
    module = lambda inputs: {"output": weights(inputs)}  # noqa: E731
    tiny_noise = verify(lambda inputs: weights(inputs, noise=1e-7), module, encoder, 16, "test")
    assert tiny_noise.passed and tiny_noise.top_tokens_equal
    other_token = verify(lambda inputs: weights(inputs, top=(5, 7, 11)), module, encoder, 16, "test")
    assert not other_token.top_tokens_equal


def test_production_vocabulary_has_no_token_string_collisions(tokenizer):
    assert colliding_strings(tokenizer) == {}
    strings = token_strings(tokenizer)
    assert strings[20406] == "##에" and strings[42009] == "당뇨병" and strings[0] == ""


def test_collisions_are_reported(colliding_tokenizer):
    assert colliding_strings(colliding_tokenizer) == {"서울": [1, 2]}
    with pytest.raises(TokenCollisionError, match="'서울': \\[1, 2\\]"):
        check_no_collisions(colliding_tokenizer)


def test_chunks_are_at_most_ten_megabytes():
    artifact = ModelArtifact(bytes(range(256)) * 100_001, "m", "SPARSE_ENCODING")
    chunks = list(artifact.chunks())
    assert artifact.chunk_count() == len(chunks) == 3
    assert max(len(c) for c in chunks) <= 10_000_000
    assert b"".join(chunks) == artifact.content


def test_package_cli(saved_model, tmp_path):
    result = CliRunner().invoke(cli, ["package", str(saved_model), "--output", str(tmp_path), "--max-length", "32"])
    assert result.exit_code == 0, result.output
    assert "trace verification OK" in result.output
    assert "SPARSE_ENCODING" in result.output and (tmp_path / "package.json").is_file()


def test_a_folder_that_is_not_a_model_names_model_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    result = CliRunner().invoke(cli, ["package", str(tmp_path), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"MODEL_DIR='{tmp_path}' could not be loaded: the folder holds no model" in result.output
    assert "--model" not in result.output


def test_a_non_empty_output_is_refused_and_overwrite_touches_only_package_files(saved_model, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "README.md").write_text("my notes")
    arguments = ["package", str(saved_model), "--output", str(output), "--max-length", "32", "--name", "m"]
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(cli, [*arguments, *extra])
        assert result.exit_code == 1, result.output
        assert (output / "README.md").read_text() == "my notes"
        assert sorted(path.name for path in output.iterdir()) == ["README.md"]
    assert "is not empty (README.md)" in CliRunner().invoke(cli, arguments).output
    assert (
        "holds README.md, which ko-sparse did not write" in CliRunner().invoke(cli, [*arguments, "--overwrite"]).output
    )

    (output / "README.md").unlink()
    (output / "keep.txt").write_text("mine")
    assert CliRunner().invoke(cli, [*arguments, "--overwrite"]).exit_code == 0  # a file it does not write stays
    first = Manifest.load(output)
    assert CliRunner().invoke(cli, arguments).exit_code == 1  # the package itself makes the folder non-empty
    renamed = CliRunner().invoke(cli, [*arguments[:-1], "n", "--overwrite"])
    assert renamed.exit_code == 0, renamed.output  # replaces its own previous package, stale files removed
    assert sorted(path.name for path in output.iterdir()) == sorted(["keep.txt", *Manifest.load(output).files()])
    assert (output / "keep.txt").read_text() == "mine" and first.files()[0] not in Manifest.load(output).files()
