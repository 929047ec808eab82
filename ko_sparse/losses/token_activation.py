"""Token-activation losses: reward weight on the ids a text should expand to.

Self-reconstruction scores the anchor's own tokens; synonym activation scores the positive's
tokens in the anchor's vector. Both are the negative mean weight per example, averaged over the batch.
"""

from __future__ import annotations

import torch


def token_activation_loss(
    representations: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor
) -> torch.Tensor:
    """``-mean_i mean_{t in tokens_i} representations[i, t]``; examples without tokens count as 0.

    ``representations`` is ``[B, V]``; ``token_ids`` ``[B, L]``; ``token_mask`` ``[B, L]`` marks the
    positions that count (real tokens, not padding or special tokens). Repeated ids count each time,
    as in the notebook's loop.
    """
    mask = token_mask.to(representations.dtype)
    weights = representations.gather(1, token_ids) * mask
    per_example = weights.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    return -per_example.mean()
