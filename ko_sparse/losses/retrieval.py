"""The retrieval recipe: sentence-transformers' SPLADE losses, configured from :class:`LossConfig`.

Without teacher scores: ``SpladeLoss`` around ``SparseMultipleNegativesRankingLoss`` (in-batch and hard
negatives, dot product). With them (a ``label`` column written by ``ko-sparse data build --teacher``):
``SparseMarginMSELoss`` (one negative: label = teacher(q, p) - teacher(q, n)) or ``SparseDistillKLDivLoss``
(label = teacher scores of the positive and every negative). Queries and documents get their own FLOPS
weights; a doc-only model's IDF query side has no FLOPS.
"""

from __future__ import annotations

from sentence_transformers.sparse_encoder import SparseEncoder
from sentence_transformers.sparse_encoder.losses import (
    SparseDistillKLDivLoss,
    SparseMarginMSELoss,
    SparseMultipleNegativesRankingLoss,
    SpladeLoss,
)

from ko_sparse.losses.config import LossConfig


def retrieval_loss(model: SparseEncoder, config: LossConfig, doc_only: bool) -> SpladeLoss:
    if config.distillation == "margin_mse":
        main = SparseMarginMSELoss(model)
    elif config.distillation == "kl_div":
        main = SparseDistillKLDivLoss(model, temperature=config.distillation_temperature)
    else:
        main = SparseMultipleNegativesRankingLoss(model, scale=config.contrastive_scale)
    return SpladeLoss(
        model,
        loss=main,
        document_regularizer_weight=config.document_regularizer_weight,
        query_regularizer_weight=None if doc_only else config.query_regularizer_weight,
    )
