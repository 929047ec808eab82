"""ML-Commons' computation reproduced in Python from a packaged zip: what ``_predict`` should return.

Uses exactly the files the cluster loads: the TorchScript ``.pt`` (run by torch) or the ``.onnx``
model (run by ONNX Runtime) and ``tokenizer.json`` (with its truncation), one text at a time, keys from
the single-id decode that skips special tokens.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Callable

import numpy as np
import torch
from tokenizers import Tokenizer

from ko_sparse.model.idf import IDF_FILE
from ko_sparse.model.onnx_runtime import OnnxSparseModel

Weights = Callable[[list[int], list[int]], np.ndarray]  # one text's ids and mask -> its [vocab] weights


def _read(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


def sparse_encoding_weights(archive: bytes, texts: list[str]) -> list[dict[str, float]]:
    """Token weights of a SPARSE_ENCODING zip for each text."""
    files = _read(archive)
    tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode())
    model = _model(files)
    results = []
    for text in texts:
        encoding = tokenizer.encode(text)
        row = model(encoding.ids, encoding.attention_mask)
        weights = {}
        for token_id in np.flatnonzero(row).tolist():
            key = tokenizer.decode([token_id], skip_special_tokens=True)
            if key:
                weights[key] = float(row[token_id])
        results.append(weights)
    return results


def _model(files: dict[str, bytes]) -> Weights:
    """The zip's model file as ML-Commons' engine for it runs it: TorchScript or ONNX."""
    name = next(name for name in files if name.endswith((".pt", ".onnx")))
    if name.endswith(".onnx"):
        onnx_model = OnnxSparseModel(files[name])
        return lambda ids, mask: onnx_model(np.array([ids]), np.array([mask]))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but ML-Commons runs it
        module = torch.jit.load(io.BytesIO(files[name]), map_location="cpu").eval()

    @torch.no_grad()
    def run(ids: list[int], mask: list[int]) -> np.ndarray:
        inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.tensor([mask])}
        return module(inputs)["output"][0].numpy()

    return run


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
