"""Any SparseEncoder given by Hub id loads as sentence-transformers loads it (offline, from a cache fixture)."""

from __future__ import annotations

import json
import logging
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from sentence_transformers import SparseEncoder

from ko_sparse.cli.main import cli
from ko_sparse.errors import ModelLoadError
from ko_sparse.model.doc_only import load_model
from tests.conftest import KOREAN_SENTENCES
from tests.hub_cache import BI, METASPACE, ROUTER, TOP_K, VOCABULARY_SIZE


def dense(matrix) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix.to_dense().numpy()


@pytest.mark.parametrize("repo_id", [BI, TOP_K])
def test_a_hub_sparse_encoder_encodes_what_the_library_encodes(offline_hub, repo_id, caplog):
    with caplog.at_level(logging.WARNING):
        model = load_model(repo_id)
    assert "plain masked LM" not in caplog.text
    library = SparseEncoder(repo_id, device="cpu")
    assert not model.doc_only
    assert len(model.encoder.tokenizer) == len(library.tokenizer) <= VOCABULARY_SIZE  # its own vocabulary
    expected = dense(library.encode_document(KOREAN_SENTENCES, convert_to_sparse_tensor=True))
    np.testing.assert_allclose(dense(model.encode_documents(KOREAN_SENTENCES)), expected, rtol=1e-5, atol=1e-6)
    queries = dense(library.encode_query(KOREAN_SENTENCES[:2], convert_to_sparse_tensor=True))
    np.testing.assert_allclose(dense(model.encode_queries(KOREAN_SENTENCES[:2])), queries, rtol=1e-5, atol=1e-6)


def test_max_active_dims_of_a_hub_model_is_kept(offline_hub):
    vectors = load_model(TOP_K).encode_documents(KOREAN_SENTENCES)
    assert np.diff(vectors.indptr).max() == 8


def test_an_inference_free_hub_model_keeps_its_idf_query_side(offline_hub):
    model = load_model(ROUTER)
    library = SparseEncoder(ROUTER, device="cpu")
    assert model.doc_only
    queries = dense(library.encode_query(KOREAN_SENTENCES, convert_to_sparse_tensor=True))
    np.testing.assert_allclose(dense(model.encode_queries(KOREAN_SENTENCES)), queries, rtol=1e-6)
    documents = dense(library.encode_document(KOREAN_SENTENCES, convert_to_sparse_tensor=True))
    np.testing.assert_allclose(dense(model.encode_documents(KOREAN_SENTENCES)), documents, rtol=1e-5, atol=1e-6)


def test_an_uncached_hub_id_offline_is_one_clear_line(offline_hub):
    with pytest.raises(ModelLoadError, match=r"--model='ko-sparse-tests/not-cached' .*not in the Hugging Face cache"):
        load_model("ko-sparse-tests/not-cached")
    result = CliRunner().invoke(cli, ["expand", "당뇨병", "--model", "ko-sparse-tests/not-cached"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "HF_HUB_OFFLINE=1" in result.output


def test_a_plain_masked_lm_is_accepted_and_says_so(tiny_mlm_dir, caplog):
    with caplog.at_level(logging.WARNING):
        model = load_model(tiny_mlm_dir)
    assert not model.doc_only
    assert "is a plain masked LM (no modules.json): a SPLADE head (max, relu) is built on it" in caplog.text


def test_expand_shows_the_weights_the_library_gives(offline_hub):
    result = CliRunner().invoke(cli, ["expand", "서울 날씨", "--model", TOP_K, "--top-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    shown = [token["weight"] for token in json.loads(result.output)[0]["tokens"]]
    library = SparseEncoder(TOP_K, device="cpu").encode_document(["서울 날씨"], convert_to_sparse_tensor=True)
    expected = sorted(library.coalesce().values().tolist(), reverse=True)[:3]
    assert shown == pytest.approx(expected, abs=1e-4)  # log1p_relu weights, not a rebuilt relu head's


def test_package_writes_the_query_side_of_a_hub_router_in_its_own_vocabulary(offline_hub, tmp_path):
    output = tmp_path / "package"
    result = CliRunner().invoke(cli, ["package", ROUTER, "--output", str(output)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((output / "package.json").read_text(encoding="utf-8"))
    assert manifest["mode"] == "doc-only"
    assert manifest["source_model"] == ROUTER
    tokenizer_zip = next(a["file"] for a in manifest["artifacts"] if a["function_name"] == "SPARSE_TOKENIZE")
    with zipfile.ZipFile(output / tokenizer_zip) as zipped:
        idf = json.loads(zipped.read("idf.json"))
        vocabulary = json.loads(zipped.read("tokenizer.json"))["model"]["vocab"]
    library = SparseEncoder(ROUTER, device="cpu")
    assert len(vocabulary) == len(library.tokenizer)  # the model's WordPiece vocabulary, not A.X's 50,000
    weights = library.encode_query(["서울"], convert_to_sparse_tensor=True).coalesce()
    token = library.tokenizer.convert_ids_to_tokens(int(weights.indices()[1][0]))
    assert idf[token] == pytest.approx(float(weights.values()[0]), rel=1e-5)


def test_a_vocabulary_ml_commons_would_merge_is_one_line_and_nothing_is_written(offline_hub, tmp_path):
    """Token strings may hold dots, spaces or be empty (rank_features takes any; checked on the node): the
    limit is two ids decoding to one string, as SentencePiece's ``▁서울`` and ``서울`` do."""
    output = tmp_path / "package"
    result = CliRunner().invoke(cli, ["package", METASPACE, "--output", str(output)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "token strings are shared by several ids" in result.output
    assert not output.exists()
