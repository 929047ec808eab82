"""Turning a batch of corpus documents into the ``_source`` the index stores.

Every document gets its text, title and BM25 morphemes. With local encoding it also gets its
``rank_features`` vector, encoded here (length-sorted batches on the GPU when there is one) and pruned
as neural-search's ingest processor would (a seismic index: keyed by token id through
:class:`SeismicDocuments`); with pipeline encoding the cluster's ``sparse_encoding`` processor adds the
vector. A :class:`BatchCache` keeps the encoded vectors and morphemes of each batch
on disk, keyed by the batch's texts and the settings, so a re-run encodes nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ko_sparse.data.documents import BadRow, Document
from ko_sparse.export.token_strings import check_no_collisions
from ko_sparse.model.compiled import compile_encoder
from ko_sparse.model.doc_only import SparseModel
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.pruning import Pruning
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.corpus_index import EMBEDDING, MORPHEMES, TEXT, TITLE, MorphemeField
from ko_sparse.opensearch.rank_features import MIN_NORMAL, feature_dict
from ko_sparse.opensearch.seismic import SLOTS, TokenSlots


@dataclass
class Timings:
    """Seconds spent on each stage of preparing documents."""

    analyse: float = 0.0
    encode: float = 0.0
    cached_batches: int = 0


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


SHORT_TEXT_ROWS = 4  # shorter texts share a batch's token budget, up to this many times batch_size texts


class LocalEncoder:
    """Document vectors encoded on this machine by a SPLADE or doc-only model.

    ``batch_size`` texts per forward pass at ``max_length``; shorter texts fill the same token budget
    (``batch_size`` x ``max_length``), up to ``SHORT_TEXT_ROWS`` times as many texts per pass. A vocabulary
    where two ids share a token string is refused (their weights would merge in ``rank_features``)."""

    def __init__(
        self,
        model: SparseModel,
        max_length: int,
        batch_size: int = 32,
        pruning: Pruning | None = None,
        device: str = "auto",
        compile: bool = False,
    ) -> None:
        check_no_collisions(model.encoder.tokenizer)
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.pruning = pruning
        self.device = resolve_device(device)
        model.encoder.to(self.device)
        if compile:  # in place: each transformer block through torch.compile
            compile_encoder(model.encoder)
        self.strings = token_strings(model.encoder.tokenizer)

    def encode(self, texts: list[str]) -> sp.csr_matrix:
        vectors = encode_sparse(
            self.model.encoder,
            texts,
            SHORT_TEXT_ROWS * self.batch_size,
            self.max_length,
            max_tokens=self.batch_size * self.max_length,
        )
        return self.pruning.apply(vectors) if self.pruning else vectors


class BatchCache:
    """Encoded vectors and morphemes per batch, in ``folder/<settings>/<sha256 of the texts>.npz``."""

    def __init__(self, folder: Path, settings: str) -> None:
        self.folder = folder / hashlib.sha256(settings.encode("utf-8")).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, texts: list[str]) -> Path:
        digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:32]
        return self.folder / f"{digest}.npz"

    def get(self, texts: list[str]) -> tuple[sp.csr_matrix | None, list[str]] | None:
        path = self._path(texts)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as stored:
            morphemes = json.loads(str(stored["morphemes"]))
            if "data" not in stored:
                return None, morphemes
            shape = tuple(stored["shape"])
            return sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=shape), morphemes

    def put(self, texts: list[str], vectors: sp.csr_matrix | None, morphemes: list[str]) -> None:
        arrays = {"morphemes": np.array(json.dumps(morphemes, ensure_ascii=False))}
        if vectors is not None:
            arrays |= {"data": vectors.data, "indices": vectors.indices, "indptr": vectors.indptr}
            arrays["shape"] = np.array(vectors.shape)
        temporary = self._path(texts).with_suffix(".tmp.npz")
        np.savez(temporary, **arrays)
        temporary.replace(self._path(texts))


class SeismicDocuments:
    """Document vectors for a ``sparse_vector`` field: keyed by field id (:class:`TokenSlots`), each weight within
    the ingest quantisation ceiling. A document that needs a slot when all 32,768 are taken, or holds a weight
    above the ceiling (the node would clip it: a wrong score), is refused with the reason instead."""

    def __init__(self, slots: TokenSlots, ingest_ceiling: float, strings: list[str]) -> None:
        self.slots = slots
        self.ingest_ceiling = ingest_ceiling
        self.strings = strings
        self.unsaved = 0  # slots assigned since the index's _meta was last updated

    def values(self, vectors: sp.csr_matrix) -> list[dict[str, float] | str]:
        rows = []
        for row in range(vectors.shape[0]):
            start, end = vectors.indptr[row], vectors.indptr[row + 1]
            weights = {
                int(i): float(w)
                for i, w in zip(vectors.indices[start:end], vectors.data[start:end], strict=True)
                if w >= MIN_NORMAL and self.strings[i]
            }
            self.unsaved += self.slots.assign(weights)
            value, missing = self.slots.document(weights)
            peak = max(weights.values(), default=0.0)
            if missing:
                shown = ", ".join(f"{i} {self.strings[i]!r}" for i in missing[:3])
                rows.append(
                    f"its vector holds {len(missing)} token ids (e.g. {shown}) beyond the {SLOTS:,} distinct ids a "
                    "sparse_vector field keeps apart, all taken by earlier documents; index this corpus with "
                    "--method exact"
                )
            elif peak > self.ingest_ceiling:
                rows.append(
                    f"its largest weight {peak:.3f} is above the field's quantization_ceiling_ingest "
                    f"{self.ingest_ceiling:g}, which would clip it (a wrong score); re-index into a new --index with "
                    f"--seismic quantization_ceiling_ingest={math.ceil(peak)}"
                )
            else:
                rows.append(value)
        return rows


@dataclass
class SourceBuilder:
    """Builds the index actions of a batch: text, title, morphemes and (local encoding) the vector."""

    morphemes: MorphemeField
    encoder: LocalEncoder | None = None
    cache: BatchCache | None = None
    timings: Timings = field(default_factory=Timings)
    seismic: SeismicDocuments | None = None

    def actions(self, documents: list[Document]) -> list[dict]:
        return self.build(documents)[0]

    def build(self, documents: list[Document]) -> tuple[list[dict], list[BadRow]]:
        """The index actions of ``documents``, and the documents refused (a seismic vector that cannot be exact)."""
        texts = [document.text for document in documents]
        cached = self.cache.get(texts) if self.cache else None
        if cached is not None:
            vectors, morphemes = cached
            self.timings.cached_batches += 1
        else:
            start = time.perf_counter()
            morphemes = self.morphemes.values(texts)
            self.timings.analyse += time.perf_counter() - start
            start = time.perf_counter()
            vectors = self.encoder.encode(texts) if self.encoder else None
            self.timings.encode += time.perf_counter() - start
            if self.cache:
                self.cache.put(texts, vectors, morphemes)
        seismic = self.seismic.values(vectors) if self.seismic and vectors is not None else None
        actions, refused = [], []
        for row, (document, value) in enumerate(zip(documents, morphemes, strict=True)):
            source = {TEXT: document.text, MORPHEMES: value}
            if document.title:
                source[TITLE] = document.title
            if seismic is not None and isinstance(seismic[row], str):
                refused.append(BadRow(document.offset, f"document {document.doc_id}", seismic[row]))
                continue
            if seismic is not None:
                if seismic[row]:  # an empty sparse_vector fails a segment whose other documents have tokens (3.6)
                    source[EMBEDDING] = seismic[row]
            elif vectors is not None:
                source[EMBEDDING] = feature_dict(vectors[row], self.encoder.strings)
            actions.append({"_id": document.doc_id, "_source": source})
        return actions, refused
