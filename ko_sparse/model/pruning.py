"""Document pruning as OpenSearch's neural-search applies it (``prune_type`` / ``prune_ratio``).

- ``max_ratio`` r: keep weights >= r x the largest weight of the vector
- ``top_k`` k: keep the k largest weights (k a whole number, as neural-search requires)
- ``alpha_mass`` a: keep the largest weights while their running sum stays <= a x the total (the entry
  whose addition crosses the threshold is dropped)
- ``abs_value`` v: keep weights >= v

neural-search computes in Java ``float``: the threshold is a float32 product, the running sum a float32
accumulation in descending order, the total a double sum cast to float32. The same arithmetic is done
here explicitly in float32, so the kept entries equal the node's at every boundary (checked on the live
node by ``tests/integration/test_pruning_on_node.py``), whatever NumPy's promotion rules. Ties at the
boundary of ``top_k``/``alpha_mass`` are kept in Java's hash-map order, which no client can know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

PRUNE_TYPES = ("max_ratio", "top_k", "alpha_mass", "abs_value")


@dataclass(frozen=True)
class Pruning:
    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in PRUNE_TYPES:
            raise ValueError(f"prune type {self.kind!r}: expected one of {', '.join(PRUNE_TYPES)}")
        if self.value <= 0 or (self.kind in ("max_ratio", "alpha_mass") and self.value >= 1):
            raise ValueError(f"{self.kind}={self.value}: out of range")
        if self.kind == "top_k" and self.value != int(self.value):
            raise ValueError(f"top_k={self.value}: expected a whole number of tokens")

    @classmethod
    def parse(cls, text: str) -> Pruning:
        """``max_ratio:0.1``, ``top_k:64``, ``alpha_mass:0.8``, ``abs_value:0.5``."""
        kind, _, value = text.partition(":")
        try:
            return cls(kind.strip(), float(value))
        except ValueError as error:
            raise ValueError(f"--prune {text!r}: {error}; expected TYPE:VALUE, e.g. max_ratio:0.1") from None

    @property
    def label(self) -> str:
        value = int(self.value) if self.kind == "top_k" else self.value
        return f"{self.kind}={value}"

    def keep(self, weights: np.ndarray) -> np.ndarray:
        """Boolean mask of the weights of one vector to keep."""
        if weights.size == 0:
            return np.zeros(0, dtype=bool)
        weights = np.asarray(weights, dtype=np.float32)
        value = np.float32(self.value)
        if self.kind == "max_ratio":
            return weights >= np.float32(value * weights.max())
        if self.kind == "abs_value":
            return weights >= value
        order = np.argsort(-weights, kind="stable")
        keep = np.zeros(weights.size, dtype=bool)
        if self.kind == "top_k":
            keep[order[: int(self.value)]] = True
        else:
            total = np.float32(weights.sum(dtype=np.float64))
            running = np.cumsum(weights[order], dtype=np.float32)  # sequential, like the Java loop
            keep[order[running <= np.float32(value * total)]] = True
        return keep

    def apply(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """Each row pruned on its own."""
        matrix = matrix.tocsr(copy=True)
        for row in range(matrix.shape[0]):
            start, stop = matrix.indptr[row], matrix.indptr[row + 1]
            segment = matrix.data[start:stop]
            segment[~self.keep(segment)] = 0.0
        matrix.eliminate_zeros()
        return matrix
