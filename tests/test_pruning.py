"""Pruning matches neural-search's PruneUtils on its own test vectors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ko_sparse.model.pruning import Pruning

WEIGHTS = {"a": 10.0, "b": 6.0, "c": 3.0, "d": 1.0}


def kept(kind: str, value: float, weights=WEIGHTS) -> set[str]:
    names = list(weights)
    mask = Pruning(kind, value).keep(np.array([weights[n] for n in names], dtype=np.float32))
    return {name for name, keep in zip(names, mask, strict=True) if keep}


def test_alpha_mass_and_abs_value_match_neural_search():
    assert kept("alpha_mass", 0.8) == {"a", "b"}
    assert kept("abs_value", 3.0, {"a": 5.0, "b": 3.0, "c": 2.0, "d": 1.0}) == {"a", "b"}


def test_max_ratio_and_top_k():
    assert kept("max_ratio", 0.3) == {"a", "b", "c"}
    assert kept("top_k", 2) == {"a", "b"}


def test_rows_are_pruned_independently():
    matrix = sp.csr_matrix(np.array([[10, 6, 3, 1], [0, 2, 0, 1]], dtype=np.float32))
    pruned = Pruning("top_k", 1).apply(matrix).toarray()
    assert pruned.tolist() == [[10, 0, 0, 0], [0, 2, 0, 0]]
    assert matrix.nnz == 6


def test_parse_and_errors():
    assert Pruning.parse("top_k:64").label == "top_k=64"
    with pytest.raises(ValueError, match="expected TYPE:VALUE"):
        Pruning.parse("ratio:0.1")
    with pytest.raises(ValueError, match="out of range"):
        Pruning("max_ratio", 1.5)
