"""Training objectives: each component is a function; ``SpladeTripletLoss`` combines them."""

from ko_sparse.losses.flops import flops_loss
from ko_sparse.losses.in_batch_contrastive import in_batch_contrastive_loss
from ko_sparse.losses.splade_triplet import LossConfig, SpladeTripletLoss, TripletBatch
from ko_sparse.losses.token_activation import token_activation_loss
from ko_sparse.losses.triplet_margin import triplet_margin_loss

__all__ = [
    "LossConfig",
    "SpladeTripletLoss",
    "TripletBatch",
    "flops_loss",
    "in_batch_contrastive_loss",
    "token_activation_loss",
    "triplet_margin_loss",
]
