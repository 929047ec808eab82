"""Tokenise a batch of triplets into one padded ``[3B, L]`` batch: one forward pass per step."""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

from ko_sparse.model.splade import special_token_ids


class TripletCollator:
    """Rows ``[0, B)`` are anchors, ``[B, 2B)`` positives, ``[2B, 3B)`` negatives.

    ``token_mask`` marks real, non-special tokens: the ids the activation losses reward.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.special_ids = torch.tensor(special_token_ids(tokenizer))

    def __call__(self, rows: list[dict[str, str]]) -> dict[str, torch.Tensor]:
        texts = [row[column] for column in ("anchor", "positive", "negative") for row in rows]
        features = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        input_ids, attention_mask = features["input_ids"], features["attention_mask"]
        token_mask = attention_mask.bool() & ~torch.isin(input_ids, self.special_ids)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "token_mask": token_mask}
