"""FLOPS regularisation (Paria et al., 2020): the squared mean activation of each vocabulary id."""

from __future__ import annotations

import torch


def flops_loss(representations: torch.Tensor) -> torch.Tensor:
    """``sum_j (mean_i representations[i, j])**2`` over a ``[B, V]`` batch."""
    return representations.mean(dim=0).square().sum()
