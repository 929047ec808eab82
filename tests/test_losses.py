"""Each vectorised loss equals the notebook's per-example loop form on random tensors."""

from __future__ import annotations

import pytest
import torch

from ko_sparse.losses import (
    LossConfig,
    SpladeTripletLoss,
    TripletBatch,
    flops_loss,
    in_batch_contrastive_loss,
    token_activation_loss,
    triplet_margin_loss,
)
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


def test_triplet_margin_and_flops_equal_notebook():
    a, p, n = random_vectors(7), random_vectors(8), random_vectors(9)
    torch.testing.assert_close(triplet_margin_loss(a, p, n, 1.5), notebook.triplet_margin_loss(a, p, n, 1.5))
    torch.testing.assert_close(flops_loss(a), notebook.flops_loss(a))


def test_in_batch_contrastive_equals_explicit_softmax():
    a, p, n = random_vectors(10, 4), random_vectors(11, 4), random_vectors(12, 4)
    expected = 0.0
    for i in range(4):
        scores = torch.stack([a[i] @ c for c in [*p, *n]]) * 0.5
        expected -= torch.log_softmax(scores, dim=0)[i]
    torch.testing.assert_close(in_batch_contrastive_loss(a, p, n, scale=0.5), expected / 4)


def test_combined_loss_weights_components_and_flops_scale():
    ids, _, token_mask = random_batch(13)
    p_ids, _, p_mask = random_batch(14)
    a, p, n = random_vectors(15), random_vectors(16), random_vectors(17)
    config = LossConfig(lambda_contrastive=0.5)
    loss = SpladeTripletLoss(config)
    loss.flops_scale = 0.25
    total, parts = loss(TripletBatch(a, p, n, a, ids, token_mask, p_ids, p_mask, a))
    expected = (
        4.0 * parts["self"]
        + 10.0 * parts["synonym"]
        + 2.5 * parts["margin"]
        + 8e-3 * 0.25 * parts["flops"]
        + 0.5 * parts["contrastive"]
    )
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(parts["synonym"], token_activation_loss(a, p_ids, p_mask))
    assert set(parts) == {"self", "synonym", "margin", "flops", "contrastive"}


def test_doc_only_batch_shapes_the_document():
    ids, _, token_mask = random_batch(18)
    p_ids, _, p_mask = random_batch(19)
    a, p, n = random_vectors(20), random_vectors(21), random_vectors(22)
    documents = torch.cat([p, n])
    _, parts = SpladeTripletLoss(LossConfig())(TripletBatch(a, p, n, p, p_ids, p_mask, ids, token_mask, documents))
    torch.testing.assert_close(parts["self"], token_activation_loss(p, p_ids, p_mask))
    torch.testing.assert_close(parts["synonym"], token_activation_loss(p, ids, token_mask))
    torch.testing.assert_close(parts["flops"], flops_loss(documents))
    with pytest.raises(ValueError, match="flops_on"):
        LossConfig(flops_on="queries")
