"""What a text expands to: the vocabulary tokens a SPLADE model weights, strongest first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sentence_transformers import SparseEncoder

from ko_sparse.model.encode import encode_sparse


@dataclass(frozen=True)
class TokenWeight:
    token: str
    weight: float
    in_text: bool


def expand(encoder: SparseEncoder, texts: list[str], top_k: int = 20) -> list[list[TokenWeight]]:
    """Top-``top_k`` tokens of each text's vector (``SparseEncoder.decode``), each marked whether the text
    itself contains it."""
    vectors = encode_sparse(encoder, texts).tocoo()
    embeddings = torch.sparse_coo_tensor(
        np.vstack([vectors.row, vectors.col]), vectors.data, vectors.shape, check_invariants=True
    )
    tokenizer = encoder.tokenizer
    own = [set(tokenizer.convert_ids_to_tokens(ids)) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return [
        [TokenWeight(token, weight, token in own_tokens) for token, weight in decoded]
        for decoded, own_tokens in zip(encoder.decode(embeddings, top_k=top_k), own, strict=True)
    ]
