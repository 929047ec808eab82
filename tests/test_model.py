"""The SPLADE encoder: pooling, special tokens, SparseEncoder round trip, bad base models."""

from __future__ import annotations

import logging

import huggingface_hub
import pytest
import torch
from sentence_transformers import SparseEncoder
from sentence_transformers.sparse_encoder.modules import SpladePooling
from transformers import GPT2Config

from ko_sparse.model.encode import encode_sparse, splade_forward
from ko_sparse.model.splade import (
    ModelLoadError,
    load_encoder,
    mlm_of,
    special_token_ids,
    splade_max_pool,
)
from ko_sparse.model.teacher import teacher_kind
from tests.conftest import KOREAN_SENTENCES


def dense(matrix) -> torch.Tensor:
    return torch.from_numpy(matrix.toarray())


def test_max_pool_equals_sentence_transformers_pooling():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, 50, generator=generator) * 3
    mask = torch.ones(4, 7, dtype=torch.long)
    mask[1, 3:] = 0
    mask[2, 1:] = 0
    reference = SpladePooling("max", "relu").eval()({"token_embeddings": logits.clone(), "attention_mask": mask})[
        "sentence_embedding"
    ]
    torch.testing.assert_close(splade_max_pool(logits, mask), reference)


def test_max_pool_ignores_padding_positions():
    logits = torch.full((1, 3, 5), -1.0)
    logits[0, 2, 4] = 9.0  # a strong logit at a padding position
    pooled = splade_max_pool(logits, torch.tensor([[1, 1, 0]]))
    assert pooled.abs().sum() == 0


def test_special_token_ids_cover_added_special_tokens(tokenizer):
    ids = special_token_ids(tokenizer)
    assert {0, 1, 2, 3, 4, 5, 49999} <= set(ids)
    assert 6 in ids  # <unused0>, special in tokenizer.json but not in special_tokens_map
    assert len(ids) == 38


def test_special_tokens_never_get_weight(tiny_encoder):
    vectors = dense(encode_sparse(tiny_encoder, KOREAN_SENTENCES))
    special = special_token_ids(tiny_encoder.tokenizer)
    assert vectors[:, special].abs().sum() == 0
    assert (vectors >= 0).all()
    assert (vectors > 0).sum(dim=1).min() > 0


def test_encode_sparse_keeps_input_order_and_matches_dense_forward(tiny_encoder):
    texts = [*KOREAN_SENTENCES, "짧다"]
    sparse = dense(encode_sparse(tiny_encoder, texts, batch_size=2))
    features = tiny_encoder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        padded = splade_forward(mlm_of(tiny_encoder).eval(), features["input_ids"], features["attention_mask"])
    torch.testing.assert_close(sparse, padded, rtol=1e-5, atol=1e-6)


def test_saved_model_loads_in_sparse_encoder_with_identical_vectors(tiny_encoder, tmp_path):
    ours = dense(encode_sparse(tiny_encoder, KOREAN_SENTENCES))
    tiny_encoder.save(str(tmp_path / "model"))
    reloaded = SparseEncoder(str(tmp_path / "model"), device="cpu")
    theirs = reloaded.encode(KOREAN_SENTENCES, convert_to_tensor=True).to_dense()
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-6)
    again = dense(encode_sparse(load_encoder(tmp_path / "model"), KOREAN_SENTENCES))
    torch.testing.assert_close(again, ours)


def test_max_length_truncates(tiny_mlm_dir):
    long_text = " ".join(KOREAN_SENTENCES)
    short = dense(encode_sparse(load_encoder(tiny_mlm_dir, max_length=4), [long_text]))
    head_only = dense(encode_sparse(load_encoder(tiny_mlm_dir, max_length=64), ["당뇨병 치료"]))
    full = dense(encode_sparse(load_encoder(tiny_mlm_dir, max_length=64), [long_text]))
    # 4 tokens = <s> 당뇨병 치료 </s>: truncation makes the long text encode like its first two words
    torch.testing.assert_close(short, head_only)
    assert not torch.equal(short, full)


def test_base_model_without_mlm_head_is_rejected(tmp_path):
    GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=100).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="'gpt2' model without a masked-LM head"):
        load_encoder(tmp_path)


def test_missing_model_names_the_setting(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match=r"model\.base_model='no-such-org/no-such-model'"):
        load_encoder("no-such-org/no-such-model")


@pytest.mark.parametrize("load", [load_encoder, teacher_kind], ids=["base model", "teacher"])
def test_a_missing_hub_model_is_reported_at_once_without_retries(load, monkeypatch, caplog, capfd):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with caplog.at_level(logging.INFO), pytest.raises(ModelLoadError, match="could not be loaded: not a local folder"):
        load("ko-sparse-tests/no-such-model")
    assert "Retry" not in caplog.text + "".join(capfd.readouterr())


def test_a_folder_without_a_model_and_a_missing_path_are_named(tmp_path):
    with pytest.raises(ModelLoadError, match="the folder holds no model"):
        load_encoder(tmp_path)
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_encoder(tmp_path / "missing" / "model")


def test_the_identity_warm_up_reproduces_ids_no_bundled_sentence_contains(tmp_path, tokenizer):
    """The vocabulary's rows stay fixed while the layers learn to pass each token through, so the warm-up
    holds for ids the bundled sentences never show (the demo's 당뇨병 and 치료)."""
    from ko_sparse.model.splade import load_encoder
    from ko_sparse.model.tiny import TinyModelSpec, build_tiny_mlm
    from ko_sparse.resources.parakqc import read_parakqc_sets

    seen = {i for group in read_parakqc_sets() for s in group for i in tokenizer(s).input_ids}
    own = set(tokenizer("당뇨병 치료", add_special_tokens=False).input_ids)
    assert own and not own & seen  # the case the warm-up must cover
    spec = TinyModelSpec(hidden_size=32, num_layers=1, identity_steps=60, initial_active_ids=100)
    encoder = load_encoder(build_tiny_mlm(spec, tmp_path / "mlm"), max_length=16)
    vector = encoder.encode("당뇨병 치료", convert_to_tensor=True).to_dense()
    assert set(vector.topk(len(own)).indices.tolist()) == own  # its own tokens weigh most
