"""The notebook's combined SPLADE objective, vectorised, with every component reported."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ko_sparse.losses.flops import flops_loss
from ko_sparse.losses.in_batch_contrastive import in_batch_contrastive_loss
from ko_sparse.losses.token_activation import token_activation_loss
from ko_sparse.losses.triplet_margin import triplet_margin_loss


@dataclass
class LossConfig:
    """Weights of the loss components; defaults are the v21.3 notebook's."""

    lambda_self: float = 4.0
    lambda_synonym: float = 10.0
    lambda_margin: float = 2.5
    lambda_flops: float = 8e-3
    target_margin: float = 1.5
    lambda_contrastive: float = 0.0
    contrastive_scale: float = 1.0
    flops_warmup_steps: int = 0
    flops_on: str = "anchor"

    def __post_init__(self) -> None:
        if self.flops_on not in ("anchor", "all"):
            raise ValueError(f"loss.flops_on must be 'anchor' or 'all', got {self.flops_on!r}")


@dataclass
class TripletBatch:
    """SPLADE vectors ``[B, V]`` of a batch and the token ids/masks the activation losses read."""

    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    anchor_ids: torch.Tensor
    anchor_token_mask: torch.Tensor
    positive_ids: torch.Tensor
    positive_token_mask: torch.Tensor


class SpladeTripletLoss:
    """``lambda_self*self + lambda_synonym*synonym + lambda_margin*margin + w_flops*flops (+ contrastive)``.

    ``flops_scale`` is set by a schedule (``FlopsWarmup``) before each step; it multiplies
    ``lambda_flops``. ``__call__`` returns the weighted total and each unweighted component.
    """

    def __init__(self, config: LossConfig) -> None:
        self.config = config
        self.flops_scale = 1.0

    def __call__(self, batch: TripletBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.config
        flops_inputs = batch.anchor
        if config.flops_on == "all":
            flops_inputs = torch.cat([batch.anchor, batch.positive, batch.negative])
        components = {
            "self": token_activation_loss(batch.anchor, batch.anchor_ids, batch.anchor_token_mask),
            "synonym": token_activation_loss(batch.anchor, batch.positive_ids, batch.positive_token_mask),
            "margin": triplet_margin_loss(batch.anchor, batch.positive, batch.negative, config.target_margin),
            "flops": flops_loss(flops_inputs),
        }
        total = (
            config.lambda_self * components["self"]
            + config.lambda_synonym * components["synonym"]
            + config.lambda_margin * components["margin"]
            + config.lambda_flops * self.flops_scale * components["flops"]
        )
        if config.lambda_contrastive:
            components["contrastive"] = in_batch_contrastive_loss(
                batch.anchor, batch.positive, batch.negative, config.contrastive_scale
            )
            total = total + config.lambda_contrastive * components["contrastive"]
        return total, components
