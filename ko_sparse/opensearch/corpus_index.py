"""One index that serves sparse, BM25 and hybrid search: its fields, its mapping, and what built it.

Fields: ``text`` (title and text, what is searched and shown; not indexed itself), ``title`` (shown),
``morphemes`` (BM25: ``nori`` over the raw text when the cluster has the analysis-nori plugin, else
kiwipiepy content morphemes in a ``whitespace``-analysed field, as ``ko-sparse bench`` does) and
``embedding`` (kept out of ``_source``): ``rank_features`` keyed by token string, searched exactly
(``--method exact``), or a ``sparse_vector`` with the ``seismic`` method keyed by token id, searched
approximately (``--method seismic``, see :mod:`ko_sparse.opensearch.seismic`). The mapping's
``_meta.ko_sparse`` records the model, vocabulary and method that built the vectors, and an exact index's
two-phase search pipeline (:mod:`ko_sparse.opensearch.two_phase`); adding to the index with another one is
refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from opensearchpy import OpenSearch

from ko_sparse import __version__
from ko_sparse.errors import ClusterError, InputError
from ko_sparse.opensearch.seismic import MIN_VERSION, SLOTS_META_KEY, SeismicParameters
from ko_sparse.opensearch.two_phase import TwoPhaseParameters
from ko_sparse.text.morphemes import MorphemeTokenizer

TEXT, TITLE, MORPHEMES, EMBEDDING = "text", "title", "morphemes", "embedding"
META_KEY = "ko_sparse"


class IndexMismatchError(ClusterError):
    """The index exists but was built differently; the message says how and what to do."""


def has_nori(client: OpenSearch) -> bool:
    plugins = {row["component"] for row in client.cat.plugins(format="json")}
    return "analysis-nori" in plugins or "opensearch-analysis-nori" in plugins


class MorphemeField:
    """The BM25 side: what goes into ``morphemes`` and how it is matched."""

    def __init__(self, nori: bool, tokenizer: MorphemeTokenizer | None = None) -> None:
        self.nori = nori
        self.tokenizer = tokenizer or MorphemeTokenizer()

    @classmethod
    def for_cluster(cls, client: OpenSearch, tokenizer: MorphemeTokenizer | None = None) -> MorphemeField:
        return cls(has_nori(client), tokenizer)

    @property
    def analyzer(self) -> str:
        return "nori" if self.nori else f"whitespace over {self.tokenizer.name}"

    def mapping(self) -> dict:
        return {"type": "text", "analyzer": "nori" if self.nori else "whitespace"}

    def values(self, texts: list[str]) -> list[str]:
        """The field value of each text: raw for nori, else its morphemes joined by spaces."""
        return list(texts) if self.nori else [" ".join(tokens) for tokens in self.tokenizer(texts)]

    def query(self, text: str) -> dict:
        return {"match": {MORPHEMES: self.values([text])[0]}}

    def clauses(self, text: str) -> int:
        """How many boolean clauses the query of ``text`` takes at most (nori: one per character, a bound)."""
        value = self.values([text])[0]
        return len(value) if self.nori else len(set(value.split()))


@dataclass(frozen=True)
class IndexMeta:
    """What built an index's vectors, saved in its mapping's ``_meta``."""

    encode: str  # local | pipeline
    encoder: str  # sha256 of the model's files (local) or ml-commons:<model_id>:<content sha256> (pipeline)
    vocabulary: str | None  # sha256 of the token strings; None when only a cluster model id was given
    model: str | None = None  # the model folder, for people and for `ko-sparse search`
    model_id: str | None = None
    doc_only: bool = False
    pruning: str | None = None
    max_length: int | None = None  # tokens kept of each document; None: not known (the cluster's model's)
    query_length: int | None = None  # tokens kept of each query by `ko-sparse search`'s model and the cluster's
    bm25_analyzer: str = ""
    row_ids: str | None = None  # the corpus whose row numbers are the ids (None: ids from an id field)
    method: str = "exact"  # exact (rank_features) | seismic (sparse_vector)
    method_parameters: dict | None = None  # seismic: the SeismicParameters the field was created with
    two_phase: dict | None = None  # exact: the TwoPhaseParameters of the index's default search pipeline
    ko_sparse_version: str = __version__

    def as_meta(self) -> dict:
        return {META_KEY: asdict(self)}

    @property
    def seismic(self) -> SeismicParameters | None:
        return SeismicParameters(**(self.method_parameters or {})) if self.method == "seismic" else None

    @property
    def two_phase_parameters(self) -> TwoPhaseParameters | None:
        return TwoPhaseParameters(**self.two_phase) if self.two_phase is not None else None

    @classmethod
    def from_mapping(cls, mapping: dict) -> IndexMeta | None:
        stored = mapping.get("_meta", {}).get(META_KEY)
        if stored is None:
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in stored.items() if key in known})

    def conflicts(self, other: IndexMeta) -> list[str]:
        """Why vectors built as ``other`` describes cannot join an index built as this one describes."""
        problems = []
        if self.vocabulary and other.vocabulary and self.vocabulary != other.vocabulary:
            problems.append(
                f"its vectors use another vocabulary (sha256 {self.vocabulary[:12]}, model {self.model}) than "
                f"{other.model} ({other.vocabulary[:12]})"
            )
        if self.encoder != other.encoder:
            problems.append(
                f"it was encoded by {self.model or self.model_id} ({self.encoder[:40]}), not by "
                f"{other.model or other.model_id} ({other.encoder[:40]})"
            )
        if self.method != other.method:
            problems.append(f"it was built with --method {self.method}, this run asks for --method {other.method}")
        if self.two_phase != other.two_phase:
            problems.append(
                f"it was built with {two_phase_option(self.two_phase_parameters)}, this run asks for "
                f"{two_phase_option(other.two_phase_parameters)} (repeat the same two-phase settings)"
            )
        for name in ("encode", "pruning", "max_length", "bm25_analyzer"):
            mine, theirs = getattr(self, name), getattr(other, name)
            known = name != "max_length" or None not in (mine, theirs)  # None: a cluster model's, not told
            if known and mine != theirs:
                problems.append(f"its {name} is {mine!r}, this run's is {theirs!r}")
        return problems


def two_phase_option(parameters: TwoPhaseParameters | None) -> str:
    return f"--two-phase ({parameters.describe()})" if parameters is not None else "no --two-phase"


def index_body(
    meta: IndexMeta | None,
    morphemes: MorphemeField,
    pipeline: str | None,
    shards: int | None,
    search_pipeline: str | None = None,
    seismic: SeismicParameters | None = None,
) -> dict:
    """The one index layout every command creates: the fields above, ``meta`` in ``_meta`` (None: an index
    this run will delete, which no other command reads), the default ingest and search pipelines, and
    ``embedding`` as ``rank_features`` or (``seismic``) a ``sparse_vector`` in an ``index.sparse`` index.
    ``shards`` None leaves the number to the cluster (its index templates, else 1)."""
    settings: dict = {} if shards is None else {"number_of_shards": shards}
    if seismic is not None:
        settings["index.sparse"] = True
    if pipeline:
        settings["default_pipeline"] = pipeline
    if search_pipeline:
        settings["index.search.default_pipeline"] = search_pipeline
    mappings: dict = {
        "_source": {"excludes": [EMBEDDING]},
        "properties": {
            TEXT: {"type": "text", "index": False},
            TITLE: {"type": "text", "index": False},
            MORPHEMES: morphemes.mapping(),
            EMBEDDING: seismic.mapping() if seismic is not None else {"type": "rank_features"},
        },
    }
    if meta is not None:
        mappings["_meta"] = meta.as_meta()
    return {"settings": settings, "mappings": mappings}


def default_shards(client: OpenSearch, index: str) -> int:
    """The shards a new ``index`` would get from the cluster's index templates (1 when none sets them)."""
    simulated = client.indices.simulate_index_template(name=index)  # POST _index_template/_simulate_index/INDEX
    settings = simulated.get("template", {}).get("settings", {}).get("index", {})
    return int(settings.get("number_of_shards", 1))


def read_meta(client: OpenSearch, index: str) -> IndexMeta | None:
    """The index's ``_meta`` (None when the index does not exist); raises when it was not built by ko-sparse."""
    if not client.indices.exists(index=index):
        return None
    mapping = next(iter(client.indices.get_mapping(index=index).values()))["mappings"]
    meta = IndexMeta.from_mapping(mapping)
    properties = mapping.get("properties", {})
    field_type = "sparse_vector" if meta is not None and meta.method == "seismic" else "rank_features"
    if meta is None or properties.get(EMBEDDING, {}).get("type") != field_type:
        raise IndexMismatchError(
            f"index {index} exists but was not built by `ko-sparse index` (no _meta.{META_KEY} or no "
            f"{field_type} field {EMBEDDING!r}); choose another --index or delete it"
        )
    return meta


def read_slots(client: OpenSearch, index: str) -> list[int] | None:
    """The token-id remapping a seismic index saved (slot -> model id; None: none saved)."""
    if not client.indices.exists(index=index):
        return None
    mapping = next(iter(client.indices.get_mapping(index=index).values()))["mappings"]
    return mapping.get("_meta", {}).get(SLOTS_META_KEY)


def save_slots(client: OpenSearch, index: str, meta: IndexMeta, slots: list[int]) -> None:
    """Save the remapping in the index's ``_meta`` (which a mapping update replaces whole, so with ``meta``)."""
    client.indices.put_mapping(index=index, body={"_meta": {**meta.as_meta(), SLOTS_META_KEY: slots}})


def check_seismic_support(client: OpenSearch) -> None:
    """Raise one line unless the cluster has the ``sparse_vector`` field: OpenSearch >= 3.3 with neural-search."""
    version = client.info()["version"]["number"]
    numbers = tuple(int(part) for part in version.split("-")[0].split(".")[:2])
    plugins = {row["component"] for row in client.cat.plugins(format="json")}
    if numbers < MIN_VERSION or "opensearch-neural-search" not in plugins:
        missing = f"OpenSearch {version}" if numbers < MIN_VERSION else "a cluster without the neural-search plugin"
        raise InputError(
            f"--method seismic needs the sparse_vector field (OpenSearch 3.3 or later with the neural-search "
            f"plugin); this is {missing}. Use --method exact (rank_features), or upgrade the cluster."
        )


def check_existing(client: OpenSearch, index: str, meta: IndexMeta) -> bool:
    """Whether ``index`` exists; raises when it exists but was built differently from ``meta``, or when
    ``meta``'s row-number ids would replace documents another corpus put there."""
    existing = read_meta(client, index)
    if existing is None:
        return False
    problems = existing.conflicts(meta)
    if problems:
        raise IndexMismatchError(
            f"index {index} cannot take these documents: " + "; ".join(problems) + ". Index into a new --index "
            "(or delete this one) to change the model, its pruning, the encoding or the method."
        )
    if meta.row_ids and meta.row_ids != existing.row_ids and client.count(index=index)["count"]:
        held = f"the row numbers of {existing.row_ids}" if existing.row_ids else "ids of their own"
        raise IndexMismatchError(
            f"index {index} already holds documents (their ids: {held}); {meta.row_ids} has no id field, so its "
            "row numbers as ids would replace documents 0, 1, 2 ... there. Give --id-field with the field that "
            "holds each document's id, or index into a new --index."
        )
    return True
