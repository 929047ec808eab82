"""Weight schedules applied as step callbacks."""

from __future__ import annotations

from ko_sparse.losses import SpladeTripletLoss


class FlopsWarmup:
    """Quadratic warm-up of the FLOPS weight over ``steps`` (Formal et al., SPLADE): ``min(1, (t/T)^2)``."""

    def __init__(self, loss: SpladeTripletLoss, steps: int) -> None:
        self.loss = loss
        self.steps = steps

    def on_step_begin(self, step: int) -> None:
        self.loss.flops_scale = 1.0 if self.steps <= 0 else min(1.0, (step / self.steps) ** 2)
