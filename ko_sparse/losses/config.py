"""Loss settings of a training run: the notebook's recipe and the retrieval recipe."""

from __future__ import annotations

from dataclasses import dataclass

RECIPES = ("notebook", "retrieval")
DISTILLATIONS = ("none", "margin_mse", "kl_div")


@dataclass
class LossConfig:
    """Weights of the loss components. ``notebook`` (defaults: the v21.3 notebook's): self-reconstruction,
    synonym activation, cosine triplet margin, FLOPS on anchors (or all texts), optional in-batch
    contrastive. ``retrieval``: in-batch negatives ranking (or distillation from teacher scores) with
    separate query and document FLOPS weights. Both warm FLOPS up quadratically over
    ``flops_warmup_steps`` (at least one step)."""

    recipe: str = "notebook"
    lambda_self: float = 4.0
    lambda_synonym: float = 10.0
    lambda_margin: float = 2.5
    lambda_flops: float = 8e-3
    target_margin: float = 1.5
    lambda_contrastive: float = 0.0
    contrastive_scale: float = 1.0
    flops_warmup_steps: int = 0
    flops_on: str = "anchor"
    query_regularizer_weight: float = 5e-5
    document_regularizer_weight: float = 3e-5
    distillation: str = "none"
    distillation_temperature: float = 2.0

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"loss.recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.flops_on not in ("anchor", "all"):
            raise ValueError(f"loss.flops_on must be 'anchor' or 'all', got {self.flops_on!r}")
        if self.distillation not in DISTILLATIONS:
            raise ValueError(f"loss.distillation must be one of {', '.join(DISTILLATIONS)}, got {self.distillation!r}")
