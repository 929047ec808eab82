"""SEISMIC approximate sparse search (neural-search's ``sparse_vector`` field, OpenSearch >= 3.3), exactly scored.

The field keys each document weight by an integer token id and keeps ids in a Java ``short``:
neural-search 3.3-3.8 folds an id modulo 65,536 and casts it, so an id of 32,768 or more turns
negative, and one such document fails every ``neural_sparse`` query on its shard once the segment is
searched approximately (``negative_array_size_exception`` / ``array_index_out_of_bounds_exception``,
measured on 3.6.0; an upstream fix after 3.8 folds ids modulo 32,768, which merges ids and makes scores
approximate). The A.X vocabulary has 50,000 ids and most Korean content tokens lie above 32,767.

The scheme chosen: :class:`TokenSlots`, a remapping of the ids the corpus actually activates onto
slots 0 ... 32,767, assigned in the order the documents bring them, saved in the index's ``_meta``
(before the documents that use a new slot are written) and applied to documents and queries alike.
A query token with no slot is held by no document, so leaving it out changes no score; every score is
the exact dot product within the field's byte quantisation (:func:`quantized_score`). Measured on the
bundled corpora (4,875 passages through the A.X tokenizer): 17,482 distinct input ids, 11,770 of them
above 32,767, and 4,872 of the 4,875 passages hold at least one; a SPLADE model's expansions add more,
so a large corpus can exhaust the 32,768 slots (a random-weight tiny model, expanding everywhere,
activates 20,205 distinct ids on the same passages at 128 tokens): a document that needs a new slot
then is refused into ``failures.jsonl`` with that reason, never written with a wrong or missing id.

The alternative, splitting each vector into fields of ids below 32,768 (``embedding`` for 0-32,767,
another for 32,768-65,535) with one ``neural_sparse`` clause per field in a ``bool.should``, has no
limit on distinct ids but was not chosen: each field's approximate search finds its own top k, so a
document found by one clause only gets that clause's share of its score (a wrong score), and recall on
the sum falls below one field's. Measured by ``python -m benchmarks.seismic_ids`` on the 3.6.0 node
(the 4,875 passages as idf-weighted input ids, 687 bundled queries, one force-merged segment searched
approximately): recall@10 against the exact top 10 at ``k``/``top_n``/``heap_factor`` 10/10/1.0,
50/10/1.0 and 50/20/1.5 is 0.905, 0.907, 0.987 remapped and 0.672, 0.783, 0.834 split, with 43%, 16%,
14% of the split's returned hits scored below their dot product (none remapped); the node's median
``took`` is 1 ms for both at this size. The remapping is exact, needs one field and one clause.

Vectors written by the cluster's ingest pipeline carry the model's raw ids (the ``sparse_encoding``
processor asks the model for token ids on a ``sparse_vector`` field), which no client can remap: that
works only for a vocabulary of at most 32,768 ids, and is refused otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

import numpy as np

from ko_sparse.errors import InputError

SLOTS = 32_768  # ids neural-search 3.3-3.8 keeps apart (a signed 16-bit short)
MIN_VERSION = (3, 3)
SLOTS_META_KEY = "ko_sparse_token_slots"
QUANTIZATION_LEVELS = 255  # weights are stored as unsigned bytes 0..255 of [0, ceiling]
NODE_DEFAULTS = {
    "n_postings": "0.0005 x the segment's documents (at least 160)",
    "cluster_ratio": 0.1,
    "summary_prune_ratio": 0.4,
    "approximate_threshold": 1_000_000,
    "quantization_ceiling_ingest": 3.0,
    "quantization_ceiling_search": 16.0,
}
QUERY_PARAMETERS = {"k": int, "top_n": int, "heap_factor": float}


@dataclass(frozen=True)
class SeismicParameters:
    """The ``seismic`` method's parameters (None: the node's default, :data:`NODE_DEFAULTS`)."""

    n_postings: int | None = None
    cluster_ratio: float | None = None
    summary_prune_ratio: float | None = None
    approximate_threshold: int | None = None
    quantization_ceiling_ingest: float | None = None
    quantization_ceiling_search: float | None = None

    @classmethod
    def parse(cls, settings: Iterable[str]) -> SeismicParameters:
        """``NAME=VALUE`` settings (``--seismic n_postings=200``) as parameters; a bad one is an :class:`InputError`."""
        types = {f.name: (int if "int" in str(f.type) else float) for f in fields(cls)}
        values: dict = {}
        for setting in settings:
            name, _, text = setting.partition("=")
            if name not in types:
                raise InputError(f"--seismic {setting!r}: expected NAME=VALUE with NAME one of {', '.join(types)}")
            try:
                value = types[name](text)
            except ValueError:
                raise InputError(f"--seismic {setting!r}: {name} takes a number ({types[name].__name__})") from None
            if not value > 0 and not (name == "approximate_threshold" and value == 0):
                raise InputError(f"--seismic {setting!r}: {name} must be positive")
            values[name] = value
        return cls(**values)

    def with_defaults(self, documents: int | None, shards: int, max_weight: float | None) -> SeismicParameters:
        """These parameters, with the ones not given chosen for the corpus: segments of at least a tenth of a
        shard's documents (at most the node's 1,000,000) are searched approximately, smaller ones exactly (they
        are fast anyway); the ingest ceiling covers 1.25x the largest weight of a sample of documents (rounded
        up to a half), so no sampled weight is clipped. The rest stay the node's."""
        threshold = self.approximate_threshold
        if threshold is None and documents:
            threshold = min(NODE_DEFAULTS["approximate_threshold"], max(1_000, documents // (10 * shards)))
        ceiling = self.quantization_ceiling_ingest
        if ceiling is None and max_weight:
            ceiling = max(NODE_DEFAULTS["quantization_ceiling_ingest"], math.ceil(2.5 * max_weight) / 2)
        chosen = {"approximate_threshold": threshold, "quantization_ceiling_ingest": ceiling}
        return SeismicParameters(**{**asdict(self), **chosen})

    def mapping(self) -> dict:
        """The ``sparse_vector`` field with the ``seismic`` method and the parameters that are set."""
        parameters = {name: value for name, value in asdict(self).items() if value is not None}
        return {"type": "sparse_vector", "method": {"name": "seismic", "parameters": parameters}}

    def effective(self) -> dict:
        """Every parameter as the node will use it, for summaries."""
        return {name: NODE_DEFAULTS[name] if value is None else value for name, value in asdict(self).items()}

    @property
    def ceilings(self) -> tuple[float, float]:
        """(ingest, search) quantisation ceilings."""
        ingest, search = self.quantization_ceiling_ingest, self.quantization_ceiling_search
        return (
            NODE_DEFAULTS["quantization_ceiling_ingest"] if ingest is None else ingest,
            NODE_DEFAULTS["quantization_ceiling_search"] if search is None else search,
        )


def query_parameters(settings: Iterable[str]) -> dict:
    """``--method-parameter k=100 --method-parameter heap_factor=1.2`` as neural_sparse ``method_parameters``."""
    values: dict = {}
    for setting in settings:
        name, _, text = setting.partition("=")
        kind = QUERY_PARAMETERS.get(name)
        if kind is None:
            raise InputError(
                f"--method-parameter {setting!r}: expected NAME=VALUE with NAME one of k, top_n, heap_factor"
            )
        try:
            values[name] = kind(text)
        except ValueError:
            raise InputError(f"--method-parameter {setting!r}: {name} takes a number ({kind.__name__})") from None
        if values[name] <= 0:
            raise InputError(f"--method-parameter {setting!r}: {name} must be positive")
    return values


def quantize(values: np.ndarray, ceiling: float) -> np.ndarray:
    """The unsigned byte neural-search keeps for each weight: ``round(min(v, ceiling) * 255 / ceiling)``."""
    clipped = np.minimum(np.asarray(values, dtype=np.float32), np.float32(ceiling))
    return np.floor(clipped * np.float32(QUANTIZATION_LEVELS) / np.float32(ceiling) + np.float32(0.5))


def quantized_score(query: dict[int, float], document: dict[int, float], ceilings: tuple[float, float]) -> float:
    """The score a SEISMIC segment gives ``document`` for ``query`` (both keyed by the ids the field holds):
    the dot product of the byte-quantised weights, rescaled by ``ingest x search ceiling / 255^2``."""
    ingest, search = ceilings
    shared = sorted(set(query) & set(document))
    if not shared:
        return 0.0
    q = quantize(np.array([query[t] for t in shared]), search)
    d = quantize(np.array([document[t] for t in shared]), ingest)
    return float((q * d).sum()) * ingest * search / QUANTIZATION_LEVELS**2


def query_boost(tokens: dict, search_ceiling: float) -> tuple[dict, float]:
    """Query weights within the search ceiling, and the boost that gives the scores back their scale (the
    dot product is linear in the query, so a query scaled down by ``f`` with boost ``f`` scores the same)."""
    peak = max(tokens.values(), default=0.0)
    if peak <= search_ceiling:
        return tokens, 1.0
    factor = peak / search_ceiling
    return {token: weight / factor for token, weight in tokens.items()}, factor


def query_clause(tokens: dict[str, float], search_ceiling: float, method_parameters: dict | None = None) -> dict:
    """The ``neural_sparse`` body of query ``tokens`` keyed by field id: within the search ceiling (with the
    boost that keeps the score's scale, :func:`query_boost`) and with ``method_parameters`` when given."""
    scaled, boost = query_boost(tokens, search_ceiling)
    body: dict = {"query_tokens": scaled}
    if boost != 1.0:
        body["boost"] = boost
    if method_parameters:
        body["method_parameters"] = method_parameters
    return body


class TokenSlots:
    """Model token ids <-> the field's ids 0 ... 32,767, in the order documents brought them.

    ``identity``: the vocabulary fits (at most 32,768 ids), so ids are kept as they are."""

    def __init__(self, ids: Iterable[int] = (), identity: bool = False) -> None:
        self.identity = identity
        self.ids: list[int] = list(ids)
        self.slot = {token: slot for slot, token in enumerate(self.ids)}

    @classmethod
    def for_vocabulary(cls, size: int, stored: list[int] | None) -> TokenSlots:
        return cls(identity=True) if size <= SLOTS and stored is None else cls(stored or ())

    def assign(self, ids: Iterable[int]) -> int:
        """Give the ids without a slot the next free ones (while there are any); returns how many were added."""
        if self.identity:
            return 0
        added = 0
        for token in ids:
            if token not in self.slot and len(self.ids) < SLOTS:
                self.slot[token] = len(self.ids)
                self.ids.append(token)
                added += 1
        return added

    def field_id(self, token: int) -> int | None:
        return token if self.identity else self.slot.get(token)

    def model_id(self, field_id: int) -> int:
        return field_id if self.identity else self.ids[field_id]

    def document(self, weights: dict[int, float]) -> tuple[dict[str, float], list[int]]:
        """The field value of a vector keyed by model ids, and the ids that have no slot (empty: all fit)."""
        value, missing = {}, []
        for token, weight in weights.items():
            slot = self.field_id(token)
            if slot is None:
                missing.append(token)
            else:
                value[str(slot)] = weight
        return value, missing

    def query(self, weights: dict[int, float]) -> dict[str, float]:
        """Query tokens keyed by field id; tokens no document holds (no slot) are left out: they add nothing."""
        return {str(slot): w for token, w in weights.items() if (slot := self.field_id(token)) is not None}

    def as_meta(self) -> list[int] | None:
        return None if self.identity else list(self.ids)
