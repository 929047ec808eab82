"""How Lucene stores ``rank_features`` values, so Python can reproduce OpenSearch's scores exactly.

``FeatureField`` keeps a value as the term frequency ``floatToIntBits(v) >>> 15``: the top 9
significant bits, always rounded down (relative error below 2^-8). Values must be finite and at
least ``Float.MIN_NORMAL``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

MIN_NORMAL = np.finfo(np.float32).tiny
MAX_LINEAR_QUERY_WEIGHT = 64.0  # FeatureField.newLinearQuery rejects weights above Long.SIZE


def stored_value(values: np.ndarray) -> np.ndarray:
    """The float32 values a ``rank_features`` field gives back for ``values``."""
    bits = np.asarray(values, dtype=np.float32).view(np.int32)
    return ((bits >> 15) << 15).view(np.float32)


def feature_dict(row: sp.csr_matrix | sp.csr_array, strings: list[str]) -> dict[str, float]:
    """One sparse row as ``{token: weight}`` for a ``rank_features`` field or ``query_tokens``: ids with
    no token string (special tokens) and weights below ``Float.MIN_NORMAL`` (refused by Lucene) left out."""
    return {strings[i]: float(w) for i, w in zip(row.indices, row.data, strict=True) if strings[i] and w >= MIN_NORMAL}
