"""The notebook's objective on the library's loss modules: each component equals the notebook's
per-example loop form on random tensors, is weighted as configured, and is returned by name."""

from __future__ import annotations

import pytest
import torch

from ko_sparse.losses import LossConfig, NotebookSpladeLoss, token_activation_loss
from ko_sparse.losses import notebook_reference as notebook

VOCAB, BATCH, LENGTH, CLS, SEP, PAD = 300, 8, 12, 0, 1, 299


def random_batch(seed: int):
    """[CLS] tokens [SEP] [PAD]... with random lengths (one row has no real token)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((BATCH, LENGTH), PAD)
    mask = torch.zeros(BATCH, LENGTH, dtype=torch.long)
    lengths = torch.randint(0, LENGTH - 1, (BATCH,), generator=generator)
    lengths[0] = 0
    for row, n in enumerate(lengths.tolist()):
        ids[row, 0] = CLS
        ids[row, 1 : n + 1] = torch.randint(2, PAD, (n,), generator=generator)
        ids[row, n + 1] = SEP
        mask[row, : n + 2] = 1
    token_mask = mask.bool() & ~torch.isin(ids, torch.tensor([CLS, SEP, PAD]))
    return ids, mask, token_mask


def random_vectors(seed: int, rows: int = BATCH) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(rows, VOCAB, generator=generator))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_token_activation_equals_notebook_loop(seed):
    ids, mask, token_mask = random_batch(seed)
    vectors = random_vectors(seed + 10)
    expected = notebook.self_loss(vectors, ids, mask)
    torch.testing.assert_close(token_activation_loss(vectors, ids, token_mask), expected)


def test_token_activation_ignores_padding_and_special_positions():
    ids, _, token_mask = random_batch(3)
    vectors = random_vectors(4)
    poisoned = vectors.clone()
    poisoned[:, [CLS, SEP, PAD]] = 1e6  # weights on special ids must not count
    torch.testing.assert_close(
        token_activation_loss(poisoned, ids, token_mask), token_activation_loss(vectors, ids, token_mask)
    )


def test_token_activation_gradient_matches_loop():
    ids, mask, token_mask = random_batch(5)
    a = random_vectors(6).requires_grad_()
    b = a.detach().clone().requires_grad_()
    token_activation_loss(a, ids, token_mask).backward()
    notebook.self_loss(b, ids, mask).backward()
    torch.testing.assert_close(a.grad, b.grad)


def features(ids, mask):
    return {"input_ids": ids, "attention_mask": mask}


def notebook_loss(model, **settings) -> NotebookSpladeLoss:
    return NotebookSpladeLoss(model, LossConfig(**settings), special_ids=[CLS, SEP, PAD], doc_only=False)


def test_library_margin_and_flops_equal_the_notebooks(tiny_encoder):
    a, p, n = random_vectors(7), random_vectors(8), random_vectors(9)
    loss = notebook_loss(tiny_encoder)
    torch.testing.assert_close(
        loss.loss.compute_loss_from_embeddings([a, p, n], None), notebook.triplet_margin_loss(a, p, n, 1.5)
    )
    torch.testing.assert_close(loss.query_regularizer.compute_loss_from_embeddings(a), notebook.flops_loss(a))


def test_library_in_batch_contrastive_equals_explicit_softmax(tiny_encoder):
    a, p, n = random_vectors(10, 4), random_vectors(11, 4), random_vectors(12, 4)
    expected = 0.0
    for i in range(4):
        scores = torch.stack([a[i] @ c for c in [*p, *n]]) * 0.5
        expected -= torch.log_softmax(scores, dim=0)[i]
    loss = notebook_loss(tiny_encoder, lambda_contrastive=1.0, contrastive_scale=0.5)
    torch.testing.assert_close(loss.contrastive.compute_loss_from_embeddings([a, p, n], None), expected / 4)


def test_components_are_weighted_named_and_sum_to_the_notebooks_total(tiny_encoder):
    ids, mask, token_mask = random_batch(13)
    p_ids, p_mask, p_token_mask = random_batch(14)
    n_ids, n_mask, _ = random_batch(15)
    a, p, n = random_vectors(15), random_vectors(16), random_vectors(17)
    loss = notebook_loss(tiny_encoder, lambda_contrastive=0.5)
    parts = loss.compute_loss_from_embeddings(
        [a, p, n], [features(ids, mask), features(p_ids, p_mask), features(n_ids, n_mask)], None
    )
    assert set(parts) == {"self", "synonym", "margin", "contrastive", "query_regularizer_loss"}
    torch.testing.assert_close(parts["self"], 4.0 * token_activation_loss(a, ids, token_mask))
    torch.testing.assert_close(parts["synonym"], 10.0 * token_activation_loss(a, p_ids, p_token_mask))
    torch.testing.assert_close(parts["margin"], 2.5 * notebook.triplet_margin_loss(a, p, n, 1.5))
    torch.testing.assert_close(parts["query_regularizer_loss"], 8e-3 * notebook.flops_loss(a))
    without = sum(v for k, v in parts.items() if k != "contrastive")
    expected = (
        4.0 * notebook.self_loss(a, ids, mask)
        + 10.0 * notebook.self_loss(a, p_ids, p_mask)
        + 2.5 * notebook.triplet_margin_loss(a, p, n, 1.5)
        + 8e-3 * notebook.flops_loss(a)
    )
    torch.testing.assert_close(without, expected)
    loss.query_regularizer_weight = 8e-3 * 0.25  # what the warm-up callback sets part-way
    assert loss.compute_loss_from_embeddings(
        [a, p, n], [features(ids, mask), features(p_ids, p_mask), features(n_ids, n_mask)], None
    )["query_regularizer_loss"] == pytest.approx(0.25 * parts["query_regularizer_loss"].item(), rel=1e-6)


def test_flops_on_all_texts_regularises_every_column(tiny_encoder):
    a, p, n = random_vectors(18), random_vectors(19), random_vectors(20)
    ids, mask, _ = random_batch(21)
    loss = notebook_loss(tiny_encoder, flops_on="all")
    parts = loss.compute_loss_from_embeddings([a, p, n], [features(ids, mask)] * 3, None)
    assert "query_regularizer_loss" not in parts
    torch.testing.assert_close(parts["document_regularizer_loss"], 8e-3 * notebook.flops_loss(torch.cat([a, p, n])))


def test_doc_only_shapes_the_document(tiny_encoder):
    ids, mask, token_mask = random_batch(18)
    p_ids, p_mask, p_token_mask = random_batch(19)
    a, p, n = random_vectors(20), random_vectors(21), random_vectors(22)
    loss = NotebookSpladeLoss(tiny_encoder, LossConfig(), special_ids=[CLS, SEP, PAD], doc_only=True)
    parts = loss.compute_loss_from_embeddings(
        [a, p, n], [features(ids, mask), features(p_ids, p_mask), features(p_ids, p_mask)], None
    )
    torch.testing.assert_close(parts["self"], 4.0 * token_activation_loss(p, p_ids, p_token_mask))
    torch.testing.assert_close(parts["synonym"], 10.0 * token_activation_loss(p, ids, token_mask))
    torch.testing.assert_close(parts["document_regularizer_loss"], 8e-3 * notebook.flops_loss(torch.cat([p, n])))
    assert "query_regularizer_loss" not in parts
    with pytest.raises(ValueError, match="flops_on"):
        LossConfig(flops_on="queries")
