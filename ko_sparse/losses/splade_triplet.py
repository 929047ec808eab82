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
    """Vectors ``[B, V]`` of a batch, and which vector the activation losses shape.

    ``expanded`` is the encoder output that learns to expand: it should weight its own tokens
    (``own_ids``, self-reconstruction) and the tokens of its counterpart (``target_ids``, synonym
    activation). Bi-encoder: the anchor, activating the positive's tokens. Doc-only: the positive
    document, activating the query's tokens (the query side cannot expand).
    """

    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    expanded: torch.Tensor
    own_ids: torch.Tensor
    own_mask: torch.Tensor
    target_ids: torch.Tensor
    target_mask: torch.Tensor
    flops_inputs: torch.Tensor


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
        components = {
            "self": token_activation_loss(batch.expanded, batch.own_ids, batch.own_mask),
            "synonym": token_activation_loss(batch.expanded, batch.target_ids, batch.target_mask),
            "margin": triplet_margin_loss(batch.anchor, batch.positive, batch.negative, config.target_margin),
            "flops": flops_loss(batch.flops_inputs),
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
