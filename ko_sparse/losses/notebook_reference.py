"""The v21.3 notebook's per-example loop forms of the losses, unchanged in logic.

Kept only as the reference: tests check the vectorised losses against them and
``benchmarks/train_step.py`` measures the speed-up. Training never calls them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def self_loss(sparse_repr: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Notebook ``compute_self_loss`` (also ``compute_positive_loss`` with the positive's ids)."""
    batch_size = input_ids.shape[0]
    loss = 0.0
    for i in range(batch_size):
        token_ids = input_ids[i][attention_mask[i].bool()][1:-1]
        if len(token_ids) > 0:
            loss -= sparse_repr[i][token_ids].mean()
    return loss / batch_size


def triplet_margin_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float):
    """Notebook ``compute_triplet_margin_loss``."""
    return F.relu(margin - F.cosine_similarity(anchor, positive) + F.cosine_similarity(anchor, negative)).mean()


def flops_loss(sparse_repr: torch.Tensor) -> torch.Tensor:
    """Notebook ``compute_flops_loss``."""
    return (sparse_repr.mean(dim=0) ** 2).sum()


def splade_forward(mlm: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Notebook ``SPLADEModel.forward``: log1p(relu) and masking on ``[B, L, V]``, then max-pool."""
    logits = mlm(input_ids=input_ids, attention_mask=attention_mask).logits
    token_scores = torch.log1p(torch.relu(logits)) * attention_mask.unsqueeze(-1).float()
    return token_scores.max(dim=1).values
