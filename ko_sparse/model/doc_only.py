"""Inference-free (doc-only) sparse models: IDF-weighted query tokens, a SPLADE document encoder.

Saved as a sentence-transformers ``Router``: the ``query`` route is ``SparseStaticEmbedding`` (the
tokenizer's ids weighted by IDF, special tokens excluded), the ``document`` route is the SPLADE
encoder. ``SparseEncoder(path).encode_query`` / ``encode_document`` use them; ``idf.json`` (keyed
by the token strings ML-Commons decodes) sits beside them for packaging. Any such Router (the
multilingual-v1 layout too), by folder or Hub id, loads as sentence-transformers loads it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sentence_transformers import SparseEncoder
from sentence_transformers.base.modules import Router
from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding

from ko_sparse.errors import ModelLoadError
from ko_sparse.model.hub import check_model_source
from ko_sparse.model.idf import IDF_FILE, idf_json
from ko_sparse.model.lengths import Lengths, recorded_lengths
from ko_sparse.model.onnx_runtime import OnnxSparseModel
from ko_sparse.model.splade import (
    is_saved_encoder,
    load_sparse_encoder,
    own_loop_fits,
    special_token_ids,
    splade_modules,
    splade_on_masked_lm,
    suppress_special_tokens,
)

logger = logging.getLogger(__name__)


@dataclass
class SparseModel:
    """What every ko-sparse command needs of a model: the document encoder, and the query IDF
    weights when queries are not encoded by the model (doc-only)."""

    encoder: SparseEncoder
    idf: np.ndarray | None = None
    onnx: OnnxSparseModel | None = None  # the encoder exported to ONNX: ONNX Runtime encodes instead of torch
    lengths: Lengths | None = None  # None: the encoder's max_seq_length for documents and queries

    def __post_init__(self) -> None:
        if self.lengths is None:
            self.lengths = Lengths(self.encoder.max_seq_length, self.encoder.max_seq_length)

    @property
    def doc_only(self) -> bool:
        return self.idf is not None

    def encode_documents(
        self, texts: list[str], batch_size: int = 64, max_length: int | None = None, show_progress: bool = False
    ) -> sp.csr_matrix:
        from ko_sparse.model.encode import encode_sparse

        length = max_length or self.lengths.document
        return encode_sparse(self.encoder, texts, batch_size, length, show_progress, onnx=self.onnx)

    def encode_queries(self, texts: list[str], batch_size: int = 64) -> sp.csr_matrix:
        """IDF-weighted tokens (doc-only); else the model at the query length, through the library's
        ``encode_query`` (its query prompt) when ko-sparse's loop does not compute the model's vectors."""
        if self.idf is not None:
            return idf_query_vectors(self.encoder.tokenizer, self.idf, texts)
        if self.onnx is None and not own_loop_fits(self.encoder):
            from ko_sparse.model.encode import library_encode

            return library_encode(self.encoder, texts, batch_size, self.lengths.query, query=True)
        return self.encode_documents(texts, batch_size, self.lengths.query)


def idf_query_vectors(tokenizer, idf: np.ndarray, texts: list[str]) -> sp.csr_matrix:
    """Each distinct token id of a text (no special tokens) weighted by its IDF."""
    rows, cols = [], []
    for row, ids in enumerate(tokenizer(list(texts), add_special_tokens=False)["input_ids"]):
        unique = np.unique(ids)
        rows.extend([row] * len(unique))
        cols.extend(unique.tolist())
    values = idf[np.asarray(cols, dtype=np.int64)] if cols else np.zeros(0, dtype=np.float32)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(texts), len(idf)), dtype=np.float32)
    matrix.eliminate_zeros()
    return matrix


def doc_only_model(encoder: SparseEncoder, idf: np.ndarray, trainable: bool = False) -> SparseEncoder:
    """A query/document Router: IDF-weighted query tokens (``SparseStaticEmbedding``, trained with its own
    learning rate when ``trainable``) and ``encoder`` for documents."""
    query = SparseStaticEmbedding(
        tokenizer=encoder.tokenizer, weight=torch.from_numpy(np.asarray(idf, np.float32)), frozen=not trainable
    )
    router = Router.for_query_document(query_modules=[query], document_modules=list(encoder))
    return SparseEncoder(modules=[router], device=str(encoder.device))


def save_model(model: SparseEncoder, path: str | Path) -> None:
    """``model.save``; a doc-only model also gets ``idf.json`` (its query weights keyed as ML-Commons decodes)."""
    model.save(str(path))
    parts = split_model(model)
    if parts.idf is not None:
        Path(path, IDF_FILE).write_text(
            json.dumps(idf_json(parts.encoder.tokenizer, parts.idf), ensure_ascii=False), encoding="utf-8"
        )


def save_doc_only(encoder: SparseEncoder, idf: np.ndarray, path: str | Path) -> None:
    """Save ``encoder`` with IDF query weights as a doc-only Router model (``idf.json`` beside it)."""
    save_model(doc_only_model(encoder, idf), path)


def split_model(model: SparseEncoder, setting: str = "--model") -> SparseModel:
    """A bi-encoder as it is, or a doc-only Router split into its document encoder and query IDF
    (special ids and negative trained weights at 0). The parts share the model's modules, and the document
    encoder keeps the model's ``max_active_dims`` and prompts, so it encodes as ``encode_document``."""
    if not isinstance(model[0], Router):
        _check_vocabulary_sized(list(model), setting)
        return SparseModel(model)
    routes = getattr(model[0], "sub_modules", {})
    query = list(routes["query"]) if "query" in routes else []
    document = list(routes["document"]) if "document" in routes else []
    if len(query) != 1 or not isinstance(query[0], SparseStaticEmbedding) or not splade_modules(document):
        raise ModelLoadError(
            f"{setting}: a Router model but not the inference-free layout ko-sparse serves "
            f"(query: SparseStaticEmbedding; document: Transformer(fill-mask) + SpladePooling); found query "
            f"{[type(m).__name__ for m in query]}, document {[type(m).__name__ for m in document]}"
        )
    encoder = SparseEncoder(
        modules=document, device=str(model.device), max_active_dims=model.max_active_dims, prompts=model.prompts
    )
    if query[0].tokenizer.get_vocab() != encoder.tokenizer.get_vocab():
        raise ModelLoadError(
            f"{setting}: the Router's query tokenizer and its document encoder's tokenizer have different "
            "vocabularies; ko-sparse serves models whose two sides share one vocabulary"
        )
    idf = torch.relu(query[0].weight.detach()).float().cpu().numpy().copy()
    idf[special_token_ids(encoder.tokenizer)] = 0.0
    return SparseModel(encoder, idf)


def _check_vocabulary_sized(modules: list[torch.nn.Module], setting: str) -> None:
    if not splade_modules(modules):
        raise ModelLoadError(
            f"{setting}: a SparseEncoder, but not one whose vectors are indexed by its vocabulary "
            f"(found {[type(m).__name__ for m in modules]}); ko-sparse serves Transformer(fill-mask) + "
            "SpladePooling models, and inference-free Routers of one"
        )


def load_model(
    name: str | Path, max_length: int | None = None, setting: str = "--model", query_length: int | None = None
) -> SparseModel:
    """A model for the commands, by folder or Hugging Face Hub id: a saved SparseEncoder (bi-encoder or
    inference-free Router) exactly as sentence-transformers loads it, split into its parts; or a plain masked
    LM with a SPLADE head built on it. With the lengths recorded with the model (``max_length`` /
    ``query_length`` replace them)."""
    name = str(name)
    check_model_source(name, setting)
    if is_saved_encoder(name):
        parts = split_model(load_sparse_encoder(name, setting), f"{setting}={name!r}")
    else:
        encoder = splade_on_masked_lm(name, setting)
        logger.warning(  # so a user who meant a trained model sees what was loaded
            "%s=%r is a plain masked LM (no modules.json): a SPLADE head (max, relu) is built on it", setting, name
        )
        suppress_special_tokens(encoder[0].auto_model, special_token_ids(encoder.tokenizer))
        parts = SparseModel(encoder)
    parts.lengths = recorded_lengths(name, parts.encoder.max_seq_length).override(max_length, query_length)
    parts.encoder.max_seq_length = parts.lengths.document
    return parts
