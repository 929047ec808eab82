"""In-batch-negatives contrastive loss on the dot product, the score OpenSearch ranks with."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def in_batch_contrastive_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """Cross-entropy of each anchor against every positive and negative in the batch.

    Anchor ``i``'s target is positive ``i``; the other positives and all negatives (including its own
    hard negative) are the candidates it must score lower.
    """
    candidates = torch.cat([positive, negative], dim=0)
    scores = scale * anchor @ candidates.T
    targets = torch.arange(anchor.shape[0], device=anchor.device)
    return F.cross_entropy(scores, targets)
