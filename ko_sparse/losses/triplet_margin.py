"""Triplet margin loss on cosine similarity, as in the notebook."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def triplet_margin_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """``mean(relu(margin - cos(a, p) + cos(a, n)))``."""
    positive_similarity = F.cosine_similarity(anchor, positive, dim=-1)
    negative_similarity = F.cosine_similarity(anchor, negative, dim=-1)
    return F.relu(margin - positive_similarity + negative_similarity).mean()
