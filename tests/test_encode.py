"""encode_sparse's pipeline: chunks tokenised in a background thread, token-budget batches, input order."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ko_sparse.model import encode as encode_module
from ko_sparse.model.encode import chunk_bounds, encode_sparse, pad, plan_batches, prefetched, splade_forward
from ko_sparse.model.splade import mlm_of
from tests.conftest import KOREAN_SENTENCES

LONG = " ".join(KOREAN_SENTENCES)  # longer than the fixture's 32 tokens: truncated
MIXED = [LONG, "짧다", *KOREAN_SENTENCES, "감기", LONG[:40], *KOREAN_SENTENCES[::-1], "네", LONG[10:70]]


def padded_forward(encoder, texts: list[str]) -> torch.Tensor:
    """The plain form: every text in one padded batch."""
    features = encoder.tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        return splade_forward(mlm_of(encoder).eval(), features["input_ids"], features["attention_mask"])


def test_rows_keep_input_order_across_chunks_and_token_budget_batches(tiny_encoder, monkeypatch):
    shapes, chunks = [], []
    forward, plan = encode_module.splade_forward, encode_module.plan_batches
    monkeypatch.setattr(
        encode_module, "splade_forward", lambda m, ids, mask: shapes.append(ids.shape) or forward(m, ids, mask)
    )
    monkeypatch.setattr(
        encode_module, "plan_batches", lambda lengths, *a: chunks.append(len(lengths)) or plan(lengths, *a)
    )
    vectors = encode_sparse(tiny_encoder, MIXED, batch_size=3, max_tokens=40, chunk_texts=5)
    assert vectors.shape == (len(MIXED), mlm_of(tiny_encoder).config.vocab_size) and vectors.dtype == np.float32
    assert chunks == [5, 5, 5, 1]  # the CPU tokenises chunk_texts at a time
    assert len(shapes) > len(chunks) and all(
        rows <= 3 and (rows * length <= 40 or rows == 1) for rows, length in shapes
    )
    torch.testing.assert_close(
        torch.from_numpy(vectors.toarray()), padded_forward(tiny_encoder, MIXED), rtol=1e-5, atol=1e-5
    )


def test_vectors_equal_sparse_encoder_encode(tiny_encoder):
    ours = encode_sparse(tiny_encoder, MIXED, batch_size=4, max_tokens=64, chunk_texts=6).toarray()
    theirs = tiny_encoder.encode(MIXED, batch_size=4, convert_to_tensor=True).to_dense().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_empty_input_gives_an_empty_matrix(tiny_encoder):
    vectors = encode_sparse(tiny_encoder, [])
    assert vectors.shape == (0, mlm_of(tiny_encoder).config.vocab_size) and vectors.dtype == np.float32


def test_a_text_longer_than_the_token_budget_is_encoded_alone(tiny_encoder):
    alone = encode_sparse(tiny_encoder, [LONG, "짧다"], batch_size=8, max_tokens=5).toarray()
    together = encode_sparse(tiny_encoder, [LONG, "짧다"]).toarray()
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)
    assert (alone > 0).sum(axis=1).min() > 0


def test_an_error_in_the_tokenising_thread_reaches_the_caller(tiny_encoder, monkeypatch):
    plan = encode_module.plan_batches

    def failing_on_the_second_chunk(lengths, *args):
        if threading.current_thread() is threading.main_thread():
            raise AssertionError("batches are planned in the background thread")
        if failing_on_the_second_chunk.calls:
            raise RuntimeError("tokeniser broke")
        failing_on_the_second_chunk.calls += 1
        return plan(lengths, *args)

    failing_on_the_second_chunk.calls = 0
    monkeypatch.setattr(encode_module, "plan_batches", failing_on_the_second_chunk)
    outcome = []
    caller = threading.Thread(
        target=lambda: outcome.append(_raised(lambda: encode_sparse(tiny_encoder, MIXED, chunk_texts=4))), daemon=True
    )
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "encode_sparse hung after the background thread failed"
    assert isinstance(outcome[0], RuntimeError) and str(outcome[0]) == "tokeniser broke"


def _raised(call) -> BaseException | None:
    try:
        call()
    except BaseException as error:  # handed to the test thread
        return error
    return None


def test_plan_batches_cuts_longest_first_by_rows_and_token_budget():
    lengths = np.array([3, 30, 7, 12, 30, 1, 9, 25])
    batches = plan_batches(lengths, batch_size=3, max_tokens=40)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert [lengths[b].tolist() for b in batches] == [[30], [30], [25], [12, 9, 7], [3, 1]]
    assert plan_batches(np.array([], dtype=np.int64), 3, 40) == []


def test_pad_matches_the_tokenizers_padding(tokenizer):
    token_ids = tokenizer(KOREAN_SENTENCES)["input_ids"]
    ids, mask = pad(token_ids, tokenizer.pad_token_id)
    expected = tokenizer.pad({"input_ids": token_ids}, return_tensors="np")
    np.testing.assert_array_equal(ids, expected["input_ids"])
    np.testing.assert_array_equal(mask, expected["attention_mask"])
    assert ids.dtype == mask.dtype == np.int64


def test_chunks_grow_from_the_first_to_the_largest():
    assert list(chunk_bounds(20, 2, 8)) == [(0, 2), (2, 6), (6, 14), (14, 20)]
    assert list(chunk_bounds(0, 2, 8)) == []


def test_prefetched_keeps_order_runs_ahead_and_cancels_on_close():
    started = []

    def make(item: int) -> int:
        started.append(item)
        return item * 10

    results = prefetched(make, range(100), ahead=2)
    assert [next(results), next(results)] == [0, 10]
    results.close()
    assert len(started) <= 4  # at most `ahead` beyond what was consumed, and nothing after close
    with pytest.raises(ZeroDivisionError):
        list(prefetched(lambda item: 1 // item, [2, 1, 0, 5]))
