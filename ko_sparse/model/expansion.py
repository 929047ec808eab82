"""What a text expands to: the vocabulary tokens a SPLADE model weights, strongest first."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sentence_transformers import SparseEncoder

from ko_sparse.model.encode import encode_sparse


@dataclass(frozen=True)
class TokenWeight:
    token: str
    token_id: int
    weight: float
    in_text: bool


def expand(encoder: SparseEncoder, texts: list[str], top_k: int = 20) -> list[list[TokenWeight]]:
    """Top-``top_k`` tokens of each text's vector, each marked whether the text itself contains it."""
    tokenizer = encoder.tokenizer
    vectors = encode_sparse(encoder, texts)
    expansions = []
    for row, text in enumerate(texts):
        vector = torch.from_numpy(vectors[row].toarray()[0])
        own_ids = set(tokenizer(text, add_special_tokens=False)["input_ids"])
        k = min(top_k, int((vector > 0).sum()))
        weights, ids = vector.topk(k)
        expansions.append(
            [
                TokenWeight(tokenizer.convert_ids_to_tokens(int(i)), int(i), float(w), int(i) in own_ids)
                for w, i in zip(weights, ids, strict=False)
            ]
        )
    return expansions
