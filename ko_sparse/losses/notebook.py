"""The v21.3 notebook's objective as a sentence-transformers ``SpladeLoss``, every component logged.

``lambda_self x self + lambda_synonym x synonym + lambda_margin x margin (+ lambda_contrastive x
contrastive) + FLOPS``. The margin is the library's ``SparseTripletLoss`` with the cosine distance
(``relu(m - cos(a, p) + cos(a, n))``, the notebook's form), the contrastive term its
``SparseMultipleNegativesRankingLoss`` on the dot product, FLOPS its ``FlopsLoss`` through
``SpladeLoss``'s query/document regularizers, so the library's
``SpladeRegularizerWeightSchedulerCallback`` warms it up. What the library lacks is the notebook's
token-activation pair (:mod:`ko_sparse.losses.token_activation`), which needs the texts' token ids:
that is why ``forward`` is ours.

Which vector learns to expand: bi-encoder, the anchor (its own tokens and the positive's); doc-only,
the positive document (its own tokens and the query's), since an IDF query cannot expand.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses.triplet import TripletDistanceMetric
from sentence_transformers.sparse_encoder import SparseEncoder
from sentence_transformers.sparse_encoder.losses import (
    SparseMultipleNegativesRankingLoss,
    SparseTripletLoss,
    SpladeLoss,
)

from ko_sparse.losses.config import LossConfig
from ko_sparse.losses.token_activation import token_activation_loss


class NotebookSpladeLoss(SpladeLoss):
    """Triplet columns (anchor, positive, negative); returns each weighted component by name."""

    def __init__(self, model: SparseEncoder, config: LossConfig, special_ids: list[int], doc_only: bool) -> None:
        everything = config.flops_on == "all" and not doc_only
        super().__init__(
            model,
            loss=SparseTripletLoss(model, TripletDistanceMetric.COSINE, config.target_margin),
            document_regularizer_weight=config.lambda_flops if doc_only or everything else 0.0,
            query_regularizer_weight=None if doc_only or everything else config.lambda_flops,
            use_document_regularizer_only=everything,
        )
        self.config = config
        self.doc_only = doc_only
        self.documents_regularized = doc_only or everything
        self.contrastive = (
            SparseMultipleNegativesRankingLoss(model, scale=config.contrastive_scale)
            if config.lambda_contrastive
            else None
        )
        self.register_buffer("special_ids", torch.tensor(sorted(special_ids)), persistent=False)

    def forward(
        self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        features = list(sentence_features)
        # bi-encoder: one forward over anchors, positives and negatives; doc-only: queries take their own route
        embeddings = [e.float() for e in embed_columns(self.model, features, separate_first=self.doc_only)]
        return self.compute_loss_from_embeddings(embeddings, features, labels)

    def compute_loss_from_embeddings(
        self, embeddings: list[torch.Tensor], features: list[dict[str, torch.Tensor]], labels: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """The weighted components from the columns' vectors and their tokenised inputs."""
        config = self.config
        expanded, counterpart = (1, 0) if self.doc_only else (0, 1)
        losses = {
            "self": config.lambda_self * self.activation(embeddings[expanded], features[expanded]),
            "synonym": config.lambda_synonym * self.activation(embeddings[expanded], features[counterpart]),
            "margin": config.lambda_margin * self.loss.compute_loss_from_embeddings(embeddings, labels),
        }
        if self.contrastive is not None:
            contrastive = self.contrastive.compute_loss_from_embeddings(embeddings, labels)
            losses["contrastive"] = config.lambda_contrastive * contrastive
        return losses | self.regularizers(embeddings)

    def activation(self, vectors: torch.Tensor, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Reward on the real (non-special, non-padding) tokens of ``features`` in ``vectors``."""
        ids = features["input_ids"]
        mask = features["attention_mask"].bool() & ~torch.isin(ids, self.special_ids.to(ids.device))
        return token_activation_loss(vectors, ids, mask)

    def regularizers(self, embeddings: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """FLOPS as ``SpladeLoss`` weighs it: documents (positives, negatives; or every text), and queries."""
        losses = {}
        if self.documents_regularized:
            documents = torch.cat(embeddings if self.use_document_regularizer_only else embeddings[1:])
            flops = self.document_regularizer.compute_loss_from_embeddings(documents)
            losses["document_regularizer_loss"] = self.document_regularizer_weight * flops
        if self.query_regularizer_weight is not None:
            query = self.query_regularizer.compute_loss_from_embeddings(embeddings[0])
            losses["query_regularizer_loss"] = self.query_regularizer_weight * query
        return losses
