"""ML-Commons' computation reproduced in Python from a packaged zip: what ``_predict`` should return.

Uses exactly the files the cluster loads: the TorchScript ``.pt`` and ``tokenizer.json`` (with its
truncation), one text at a time, keys from the single-id decode that skips special tokens.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import torch
from tokenizers import Tokenizer

from ko_sparse.model.idf import IDF_FILE


def _read(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


def sparse_encoding_weights(archive: bytes, texts: list[str]) -> list[dict[str, float]]:
    """Token weights of a SPARSE_ENCODING zip for each text."""
    files = _read(archive)
    tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode())
    model_file = next(name for name in files if name.endswith(".pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but it is what ML-Commons runs
        module = torch.jit.load(io.BytesIO(files[model_file]), map_location="cpu").eval()
    results = []
    for text in texts:
        encoding = tokenizer.encode(text)
        inputs = {
            "input_ids": torch.tensor([encoding.ids], dtype=torch.long),
            "attention_mask": torch.tensor([encoding.attention_mask], dtype=torch.long),
        }
        with torch.no_grad():
            row = module(inputs)["output"][0]
        weights = {}
        for token_id in row.nonzero().squeeze(1).tolist():
            key = tokenizer.decode([token_id], skip_special_tokens=True)
            if key:
                weights[key] = float(row[token_id])
        results.append(weights)
    return results


def sparse_tokenize_weights(archive: bytes, texts: list[str]) -> list[dict[str, float]]:
    """Query weights of a SPARSE_TOKENIZE zip: each distinct token's IDF (1.0 when absent)."""
    files = _read(archive)
    tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode())
    idf = json.loads(files[IDF_FILE]) if IDF_FILE in files else {}
    results = []
    for text in texts:
        weights = {}
        for token_id in dict.fromkeys(tokenizer.encode(text).ids):
            key = tokenizer.decode([token_id], skip_special_tokens=True)
            if key:
                weights[key] = float(idf.get(key, 1.0))
        results.append(weights)
    return results


REFERENCES = {"SPARSE_ENCODING": sparse_encoding_weights, "SPARSE_TOKENIZE": sparse_tokenize_weights}
