"""A tiny SPARSE_ENCODING TorchScript model: random weights, the production tokenizer, the
ML-Commons signature ``forward(input: Dict[str, Tensor]) -> {"output": FloatTensor[B, vocab]}``."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Dict  # noqa: UP035 - TorchScript needs typing.Dict

import torch
from transformers import AutoTokenizer

from ko_sparse.model.splade import special_token_ids
from ko_sparse.resources import TOKENIZER_DIR


class TinySparseEncoder(torch.nn.Module):
    """Embedding -> vocabulary projection -> log(1 + ReLU) -> masked max-pool, specials zeroed."""

    def __init__(self, vocab_size: int, dim: int, special_ids: list[int], bias: float = -2.0) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, dim)
        self.projection = torch.nn.Linear(dim, vocab_size)
        torch.nn.init.constant_(self.projection.bias, bias)  # sparse output: ~100 tokens per text
        keep = torch.ones(vocab_size)
        keep[special_ids] = 0.0
        self.register_buffer("keep", keep)

    def forward(self, input: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:  # noqa: UP006
        mask = input["attention_mask"].unsqueeze(-1).to(torch.float32)
        logits = self.projection(self.embedding(input["input_ids"]))
        values = torch.log1p(torch.relu(logits)) * mask
        return {"output": values.max(dim=1).values * self.keep}


def build(seed: int = 0, dim: int = 16, max_length: int = 64):
    """(scripted module, tokenizer, zip bytes with ``model.pt`` + ``tokenizer.json``)."""
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    torch.manual_seed(seed)
    module = torch.jit.script(TinySparseEncoder(len(tokenizer), dim, special_token_ids(tokenizer)).eval())
    return module, tokenizer, zipped(module, tokenizer, max_length)


def zipped(module: torch.jit.ScriptModule, tokenizer, max_length: int = 64) -> bytes:
    """The flat ML-Commons zip: ``model.pt`` + ``tokenizer.json`` with truncation at ``max_length``."""
    tokenizer_json = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer_json["truncation"] = {
        "direction": "Right",
        "max_length": max_length,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    model_bytes = io.BytesIO()
    torch.jit.save(module, model_bytes)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as files:
        files.writestr("model.pt", model_bytes.getvalue())
        files.writestr("tokenizer.json", json.dumps(tokenizer_json, ensure_ascii=False))
    return archive.getvalue()


def encode(module, tokenizer, texts: list[str]) -> list[dict[str, float]]:
    """The module's own output for each text, as ``{token: weight}`` like ML-Commons decodes it."""
    vectors = []
    for text in texts:  # ML-Commons predicts one text at a time
        features = tokenizer(text, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            values = module({"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]})
        row = values["output"][0]
        ids = row.nonzero().squeeze(1).tolist()
        vectors.append({tokenizer.decode([i]): float(row[i]) for i in ids})
    return vectors


class LookupSparseEncoder(torch.nn.Module):
    """Returns a chosen vector per text: ``vectors[selector[id]]`` for the text's selector token.

    Lets a test put exact float32 weights through ML-Commons and an ingest pipeline (row 0 is zeros:
    texts without a selector token)."""

    def __init__(self, vectors: torch.Tensor, selector: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("vectors", vectors)
        self.register_buffer("selector", selector)

    def forward(self, input: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:  # noqa: UP006
        rows = (self.selector[input["input_ids"]] * input["attention_mask"]).amax(dim=1)
        return {"output": self.vectors[rows]}


def build_lookup(vectors: torch.Tensor, selector_ids: list[int]) -> bytes:
    """A zip whose model returns ``vectors[i]`` for a text containing the token ``selector_ids[i]``."""
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    selector = torch.zeros(len(tokenizer), dtype=torch.long)
    selector[torch.tensor(selector_ids)] = torch.arange(1, len(selector_ids) + 1)
    table = torch.cat([torch.zeros(1, len(tokenizer)), vectors.to(torch.float32)])
    module = torch.jit.script(LookupSparseEncoder(table, selector).eval())
    return zipped(module, tokenizer)
