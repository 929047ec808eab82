"""How Lucene stores ``rank_features`` values, so Python can reproduce OpenSearch's scores exactly.

``FeatureField`` keeps a value as the term frequency ``floatToIntBits(v) >>> 15``: the top 9
significant bits, always rounded down (relative error below 2^-8). Values must be finite and at
least ``Float.MIN_NORMAL``.
"""

from __future__ import annotations

import numpy as np

MIN_NORMAL = np.finfo(np.float32).tiny
MAX_LINEAR_QUERY_WEIGHT = 64.0  # FeatureField.newLinearQuery rejects weights above Long.SIZE


def stored_value(values: np.ndarray) -> np.ndarray:
    """The float32 values a ``rank_features`` field gives back for ``values``."""
    bits = np.asarray(values, dtype=np.float32).view(np.int32)
    return ((bits >> 15) << 15).view(np.float32)
