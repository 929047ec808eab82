"""Query tokens from a model on this machine, for :class:`ko_sparse.opensearch.search.Searcher`.

Apart from the searcher because it needs the model (torch): searching with a deployed model or BM25 does not.
"""

from __future__ import annotations

from ko_sparse.model.doc_only import SparseModel
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.rank_features import MIN_NORMAL, feature_dict


class LocalQueryEncoder:
    """Query tokens from a model on this machine (a doc-only model weights the query's tokens by IDF)."""

    def __init__(self, model: SparseModel) -> None:
        self.model = model
        self.strings = token_strings(model.encoder.tokenizer)

    def tokens(self, text: str) -> dict[str, float]:
        return feature_dict(self.model.encode_queries([text], batch_size=1)[0], self.strings)

    def token_ids(self, text: str) -> dict[int, float]:
        """The query's weights by token id (a seismic index's keys), as :meth:`tokens` keeps them."""
        row = self.model.encode_queries([text], batch_size=1)[0]
        pairs = zip(row.indices, row.data, strict=True)
        return {int(i): float(w) for i, w in pairs if self.strings[i] and w >= MIN_NORMAL}
