"""ML-Commons' computation reproduced in Python from a packaged zip: what ``_predict`` should return.

Uses exactly the files the cluster loads: the TorchScript ``.pt`` (run by torch) or the ``.onnx``
model (run by ONNX Runtime) and ``tokenizer.json`` (with its truncation), one text at a time, keys from
the single-id decode that skips special tokens.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from ko_sparse.model.idf import IDF_FILE
from ko_sparse.model.onnx_runtime import OnnxSparseModel

Weights = Callable[[list[int], list[int]], np.ndarray]  # one text's ids and mask -> its [vocab] weights


Archive = bytes | Path  # a zip's bytes or its path
MODEL_SUFFIXES = (".pt", ".onnx")


def _open(archive: Archive) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(archive) if isinstance(archive, bytes) else archive)


def _read(archive: Archive) -> dict[str, bytes]:
    """The zip's small files (tokenizer, IDF); the model file is read by :func:`_model` from the zip."""
    with _open(archive) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist() if not name.endswith(MODEL_SUFFIXES)}


def sparse_encoding_weights(archive: Archive, texts: list[str]) -> list[dict[str, float]]:
    """Token weights of a SPARSE_ENCODING zip for each text."""
    files = _read(archive)
    tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode())
    model = _model(archive)
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


def _model(archive: Archive) -> Weights:
    """The zip's model file as ML-Commons' engine for it runs it: TorchScript or ONNX. The file is
    extracted to a temporary folder and loaded from there (a full-size model is ~600 MB: no copy of it is
    held as bytes beside the loaded model)."""
    with _open(archive) as zipped:
        name = next(name for name in zipped.namelist() if name.endswith(MODEL_SUFFIXES))
        with tempfile.TemporaryDirectory(prefix="ko-sparse-reference-") as folder:
            path = Path(zipped.extract(name, folder))
            if name.endswith(".onnx"):
                onnx_model = OnnxSparseModel(path)
                return lambda ids, mask: onnx_model(np.array([ids]), np.array([mask]))[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but ML-Commons runs it
                module = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def run(ids: list[int], mask: list[int]) -> np.ndarray:
        inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.tensor([mask])}
        return module(inputs)["output"][0].numpy()

    return run


def sparse_tokenize_weights(archive: Archive, texts: list[str]) -> list[dict[str, float]]:
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
