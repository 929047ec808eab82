"""Doc-only models: IDF query vectors, the Router layout, training, packaging and bench."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from sentence_transformers import SparseEncoder

from ko_sparse.bench.runner import run_benchmark
from ko_sparse.bench.systems import EmbeddedSparse
from ko_sparse.export.package import PackagingError, package_model
from ko_sparse.model.doc_only import idf_query_vectors, load_model, save_doc_only
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.idf import idf_vector
from ko_sparse.model.splade import special_token_ids
from ko_sparse.model.token_strings import token_strings
from tests.conftest import KOREAN_SENTENCES
from tests.test_bench import SMALL


@pytest.fixture
def doc_only_dir(tiny_encoder, tmp_path):
    idf = idf_vector(tiny_encoder.tokenizer, KOREAN_SENTENCES)
    save_doc_only(tiny_encoder, idf, tmp_path / "doc-only")
    return tmp_path / "doc-only", idf


def test_query_vector_is_the_tokens_weighted_by_idf(doc_only_dir, tokenizer):
    path, idf = doc_only_dir
    text = "당뇨병 당뇨병 치료 <mask>"
    ids = sorted(set(tokenizer(text, add_special_tokens=False)["input_ids"]) - set(special_token_ids(tokenizer)))
    expected = np.zeros(len(tokenizer), dtype=np.float32)
    expected[ids] = idf[ids]
    ours = idf_query_vectors(tokenizer, idf, [text]).toarray()[0]
    theirs = SparseEncoder(str(path), device="cpu").encode_query([text], convert_to_tensor=True).to_dense()[0]
    np.testing.assert_allclose(ours, expected)
    np.testing.assert_allclose(theirs.numpy(), expected, rtol=1e-6)
    assert ours[special_token_ids(tokenizer)].sum() == 0


def test_router_model_splits_into_document_encoder_and_idf(doc_only_dir, tiny_encoder):
    path, idf = doc_only_dir
    model = load_model(path)
    assert model.doc_only and np.allclose(model.idf, idf)
    documents = encode_sparse(model.encoder, KOREAN_SENTENCES).toarray()
    np.testing.assert_allclose(documents, encode_sparse(tiny_encoder, KOREAN_SENTENCES).toarray(), rtol=1e-6)
    routed = SparseEncoder(str(path), device="cpu").encode_document(KOREAN_SENTENCES, convert_to_tensor=True)
    np.testing.assert_allclose(routed.to_dense().numpy(), documents, rtol=1e-5, atol=1e-6)
    assert json.loads((path / "idf.json").read_text())["당뇨병"] == pytest.approx(float(idf[42009]), rel=1e-5)


def doc_only_config(output_dir, *extra):
    from ko_sparse.train.config import load_config

    return load_config(
        None,
        [
            "model.base_model=tiny:32x1",
            "model.mode=doc-only",
            "model.max_length=24",
            "data.train=builtin:parakqc",
            "training.batch_size=4",
            "training.max_steps=3",
            "training.gradient_accumulation_steps=1",
            "eval.num_distractors=20",
            "eval.max_anchors=20",
            f"output_dir={output_dir}",
            *extra,
        ],
    )


def test_doc_only_training_packages_both_models(tmp_path):
    from ko_sparse.train.trainer import Training

    Training(doc_only_config(tmp_path / "run")).train()
    best = tmp_path / "run" / "best"
    assert load_model(best).doc_only
    manifest, _ = package_model(best, tmp_path / "pkg", max_length=32)
    assert manifest.mode == "doc-only"
    assert [a.function_name for a in manifest.artifacts] == ["SPARSE_ENCODING", "SPARSE_TOKENIZE"]
    with zipfile.ZipFile(tmp_path / "pkg" / manifest.artifacts[1].file) as zipped:
        idf = json.loads(zipped.read("idf.json"))
    assert idf == json.loads((best / "idf.json").read_text())
    with pytest.raises(PackagingError, match="doc-only model"):
        package_model(best, tmp_path / "bi", mode="bi", max_length=32)


def test_trainable_idf_trains_at_its_own_rate_and_is_saved_and_packaged(tmp_path):
    from ko_sparse.train.trainer import Training

    frozen = Training(doc_only_config(tmp_path / "frozen"))
    start = frozen.model[0].sub_modules["query"][0].weight.detach().clone()
    frozen.train()
    np.testing.assert_array_equal(load_model(tmp_path / "frozen" / "final").idf, start.numpy())  # not trainable

    run = Training(doc_only_config(tmp_path / "run", "model.idf_trainable=true", "training.idf_learning_rate=0.05"))
    idf_module = run.model[0].sub_modules["query"][0]
    before = idf_module.weight.detach().clone()
    run.train()
    after = idf_module.weight.detach()
    moved = (after - before).abs()
    assert (
        moved.max() > 0.01
    )  # trained, at 0.05 (the encoder's learning rate is 5e-5 by default: nothing moves that far)
    saved = load_model(tmp_path / "run" / "final")
    np.testing.assert_allclose(saved.idf[moved.numpy() > 0.01], torch.relu(after)[moved > 0.01].numpy(), rtol=1e-6)
    idf_file = json.loads((tmp_path / "run" / "final" / "idf.json").read_text())
    manifest, _ = package_model(tmp_path / "run" / "final", tmp_path / "pkg", max_length=32)
    with zipfile.ZipFile(tmp_path / "pkg" / manifest.artifacts[1].file) as zipped:
        packaged = json.loads(zipped.read("idf.json"))
    assert packaged == idf_file
    strings = token_strings(run.model.tokenizer)
    changed = int(torch.argmax(moved))
    assert packaged[strings[changed]] == pytest.approx(float(torch.relu(after[changed])), rel=1e-5)


def test_bench_scores_doc_only_queries_without_the_model(doc_only_dir):
    path, idf = doc_only_dir
    system = EmbeddedSparse(load_model(path), "doc", max_length=64)
    (result,) = run_benchmark(SMALL, [system], hybrid=False)
    assert result.index.details["queries"] == "IDF-weighted tokens (doc-only)"
    documents = system.documents
    for qid, text in SMALL.queries.items():
        scores = (documents @ idf_query_vectors(system.encoder.tokenizer, idf, [text]).T).toarray().ravel()
        for doc_id, score in result.run[qid].items():
            assert score == pytest.approx(scores[list(SMALL.corpus).index(doc_id)], rel=1e-5)
