"""The seismic (``sparse_vector``) index: its mapping, its parameters, the token-id remapping and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.data.documents import Document
from ko_sparse.errors import InputError
from ko_sparse.opensearch.corpus_index import (
    EMBEDDING,
    IndexMeta,
    MorphemeField,
    check_seismic_support,
    index_body,
)
from ko_sparse.opensearch.search import contributions
from ko_sparse.opensearch.seismic import (
    SLOTS,
    SeismicParameters,
    TokenSlots,
    quantized_score,
    query_boost,
    query_parameters,
)
from ko_sparse.workflows.sources import SeismicDocuments, SourceBuilder


def test_the_seismic_mapping_is_a_sparse_vector_in_a_sparse_index_and_exact_stays_rank_features():
    parameters = SeismicParameters(n_postings=200, approximate_threshold=5000, quantization_ceiling_ingest=4.0)
    meta = IndexMeta("local", "sha256:x", "v", method="seismic", method_parameters={"n_postings": 200})
    body = index_body(meta, MorphemeField(False), None, 2, seismic=parameters)
    assert body["settings"] == {"number_of_shards": 2, "index.sparse": True}
    assert body["mappings"]["properties"][EMBEDDING] == {
        "type": "sparse_vector",
        "method": {
            "name": "seismic",
            "parameters": {"n_postings": 200, "approximate_threshold": 5000, "quantization_ceiling_ingest": 4.0},
        },
    }
    assert IndexMeta.from_mapping(body["mappings"]).seismic == SeismicParameters(n_postings=200)
    exact = index_body(IndexMeta("local", "sha256:x", "v"), MorphemeField(False), None, 1)
    assert exact["mappings"]["properties"][EMBEDDING] == {"type": "rank_features"}
    assert "index.sparse" not in exact["settings"]


def test_an_index_built_with_the_other_method_conflicts():
    exact, seismic = IndexMeta("local", "e", "v"), IndexMeta("local", "e", "v", method="seismic")
    assert exact.conflicts(seismic) == ["it was built with --method exact, this run asks for --method seismic"]
    assert IndexMeta.from_mapping({"_meta": {"ko_sparse": {"encode": "local", "encoder": "e", "vocabulary": "v"}}})
    assert (
        IndexMeta.from_mapping({"_meta": {"ko_sparse": {"encode": "local", "encoder": "e", "vocabulary": "v"}}}).method
        == "exact"
    )


def test_parameters_parse_and_bad_ones_name_the_setting():
    assert SeismicParameters.parse(["n_postings=100", "cluster_ratio=0.2"]) == SeismicParameters(100, 0.2)
    assert SeismicParameters.parse(["approximate_threshold=0"]).approximate_threshold == 0
    for bad, reason in (
        ("n_postings=ten", "takes a number"),
        ("ratio=1", "NAME one of"),
        ("cluster_ratio=0", "positive"),
    ):
        with pytest.raises(InputError, match=reason):
            SeismicParameters.parse([bad])
    assert query_parameters(["k=50", "heap_factor=1.5", "top_n=8"]) == {"k": 50, "heap_factor": 1.5, "top_n": 8}
    for bad in ("k=0", "heap_factor=-1", "size=3", "k=many"):
        with pytest.raises(InputError, match="--method-parameter"):
            query_parameters([bad])


def test_defaults_follow_the_corpus_size_and_the_largest_sampled_weight():
    chosen = SeismicParameters().with_defaults(documents=2_000_000, shards=2, max_weight=3.3)
    assert chosen.approximate_threshold == 100_000 and chosen.quantization_ceiling_ingest == 4.5
    assert SeismicParameters().with_defaults(10**9, 1, 1.0).approximate_threshold == 1_000_000
    assert SeismicParameters().with_defaults(500, 1, 1.0) == SeismicParameters(
        approximate_threshold=1_000, quantization_ceiling_ingest=3.0
    )
    given = SeismicParameters(approximate_threshold=7, quantization_ceiling_ingest=2.0)
    assert given.with_defaults(10**6, 1, 9.0) == given
    assert SeismicParameters().effective()["cluster_ratio"] == 0.1


def test_slots_follow_first_use_fill_up_and_drop_query_tokens_no_document_holds():
    slots = TokenSlots()
    assert slots.assign([45911, 100, 45911]) == 2
    assert slots.document({100: 0.5, 45911: 1.5}) == ({"1": 0.5, "0": 1.5}, [])
    assert slots.query({45911: 2.0, 33001: 1.0}) == {"0": 2.0}
    assert (slots.model_id(0), slots.as_meta()) == (45911, [45911, 100])
    full = TokenSlots(range(SLOTS))
    assert full.assign([SLOTS + 5]) == 0 and full.document({SLOTS + 5: 1.0, 3: 1.0}) == ({"3": 1.0}, [SLOTS + 5])
    small = TokenSlots.for_vocabulary(30_000, None)
    assert small.identity and small.document({29_999: 1.0}) == ({"29999": 1.0}, []) and small.as_meta() is None
    assert not TokenSlots.for_vocabulary(50_000, None).identity


def test_the_quantised_score_is_what_the_node_gives():
    # measured on OpenSearch 3.6: a stored 2.0 queried with weight 1.0 scores 2.007843 (default ceilings 3 and 16)
    assert quantized_score({13143: 1.0}, {13143: 2.0, 100: 0.7}, (3.0, 16.0)) == pytest.approx(2.007843, rel=1e-6)
    assert quantized_score({1: 1.0}, {2: 1.0}, (3.0, 16.0)) == 0.0


def test_a_query_above_the_search_ceiling_is_scaled_down_and_boosted_back():
    assert query_boost({"1": 4.0, "2": 2.0}, 16.0) == ({"1": 4.0, "2": 2.0}, 1.0)
    tokens, boost = query_boost({"1": 32.0, "2": 8.0}, 16.0)
    assert tokens == {"1": 16.0, "2": 4.0} and boost == 2.0


def test_documents_that_cannot_be_exact_are_refused_with_the_reason():
    strings = [""] + [f"t{i}" for i in range(1, 40_000)]
    vectors = sp.csr_matrix(np.array([[0.0, 0.5, 2.0] + [0.0] * 39_997, [0.0, 0.0, 0.0] + [0.0] * 39_996 + [5.0]]))
    rows = SeismicDocuments(TokenSlots(), 3.0, strings).values(vectors)
    assert rows[0] == {"0": 0.5, "1": 2.0}
    assert "above the field's quantization_ceiling_ingest 3" in rows[1] and "quantization_ceiling_ingest=5" in rows[1]
    full = SeismicDocuments(TokenSlots(range(10, 10 + SLOTS)), 3.0, strings).values(vectors[:1])
    assert "beyond the 32,768 distinct ids" in full[0] and "1 't1'" in full[0]


def test_a_seismic_explanation_gives_each_token_back_in_weights():
    explanation = {
        "value": 2.0078,
        "description": "sparse_ann score for doc 0 in field 'embedding'",
        "details": [
            {"value": 1, "description": "query token pruning: kept all 1 tokens (no pruning occurred)", "details": []},
            {
                "value": 2720,
                "description": "raw dot product score (quantized): 2720",
                "details": [{"value": 2720, "description": "token '7' contribution: query_weight=16 * doc_weight=170"}],
            },
            {
                "value": 0.000738,
                "description": "quantization rescaling: 1.0000 * 3.00 * 16.00 / 255 / 255 = 0.000738",
                "details": [
                    {"value": 1.0, "description": "original boost: 1.0000"},
                    {"value": 3.0, "description": "ceiling_ingest (quantization parameter): 3.00"},
                    {"value": 16.0, "description": "ceiling_search (quantization parameter): 16.00"},
                    {"value": 255, "description": "MAX_UNSIGNED_BYTE_VALUE: 255"},
                ],
            },
        ],
    }
    (found,) = contributions(explanation)
    assert (found.token, found.score) == ("7", pytest.approx(2.0078))
    assert found.document_weight == pytest.approx(2.0) and found.query_weight == pytest.approx(1.0039, rel=1e-3)


class StubCluster:
    """Answers ``info`` and ``cat.plugins`` as a cluster of ``version`` with ``plugins`` would."""

    def __init__(self, version: str, plugins: list[str]) -> None:
        self.version, self.plugin_names = version, plugins
        self.cat = self

    def info(self) -> dict:
        return {"version": {"number": self.version}}

    def plugins(self, format: str) -> list[dict]:
        return [{"component": name} for name in self.plugin_names]


@pytest.mark.parametrize(
    ("version", "plugins", "reason"),
    [("3.2.0", ["opensearch-neural-search"], "OpenSearch 3.2.0"), ("3.6.0", [], "without the neural-search")],
)
def test_a_node_without_the_sparse_vector_field_is_one_line(version, plugins, reason):
    with pytest.raises(InputError, match=f"--method seismic needs the sparse_vector field .*{reason}"):
        check_seismic_support(StubCluster(version, plugins))
    check_seismic_support(StubCluster("3.6.0", ["opensearch-neural-search"]))


def test_seismic_options_without_the_method_are_a_usage_error(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"_id": "1", "text": "서울"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["index", "--index", "x", "--corpus", str(corpus), "--seismic", "n_postings=5"])
    assert result.exit_code == 2 and "apply to --method seismic" in result.output


def test_the_ingest_pipeline_with_a_50000_id_vocabulary_is_refused_before_any_request(tmp_path, saved_model):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"_id": "1", "text": "서울"}\n', encoding="utf-8")
    arguments = ["index", "--host", "127.0.0.1:9", "--index", "x", "--corpus", str(corpus), "--method", "seismic"]
    result = CliRunner().invoke(
        cli, [*arguments, "--encode", "pipeline", "--model-id", "m", "--model", str(saved_model)]
    )
    assert result.exit_code == 2, result.output
    assert "its vocabulary has 50,000 ids; use --encode local" in result.output
    assert len(result.output.strip().splitlines()) == 1


class StubEncoder:
    """Fixed vectors, one row per text, as :class:`LocalEncoder` would give them."""

    def __init__(self, rows: sp.csr_matrix, strings: list[str]) -> None:
        self.rows, self.strings = rows, strings

    def encode(self, texts: list[str]) -> sp.csr_matrix:
        return self.rows[: len(texts)]


def test_the_builder_writes_field_ids_leaves_out_empty_vectors_and_refuses_what_cannot_be_exact():
    strings = ["", *(f"t{i}" for i in range(1, 40_000))]
    dense = np.zeros((3, 40_000))
    dense[0, [5, 39_000]] = [0.5, 1.0]
    dense[2, 7] = 9.0  # above the ingest ceiling
    encoder = StubEncoder(sp.csr_matrix(dense), strings)
    seismic = SeismicDocuments(TokenSlots(), 3.0, strings)
    builder = SourceBuilder(MorphemeField(True), encoder, seismic=seismic)
    documents = [Document(n, f"d{n}", f"text {n}") for n in range(3)]
    actions, refused = builder.build(documents)
    assert actions[0]["_source"][EMBEDDING] == {"0": 0.5, "1": 1.0}
    assert EMBEDDING not in actions[1]["_source"]  # an empty sparse_vector would fail the node's segment
    assert [(row.offset, row.where) for row in refused] == [(2, "document d2")] and len(actions) == 2
    assert seismic.unsaved == 3 and seismic.slots.as_meta() == [5, 39_000, 7]


def test_the_matched_line_shows_the_tokens_beyond_top_n_as_one_sparse_remainder():
    from ko_sparse.cli.search import matched
    from ko_sparse.opensearch.search import Contribution, Hit

    parts = [Contribution("서울", 1.0, 0.5, 2.0), Contribution("(query tokens beyond top_n)", 0.25)]
    line = matched(Hit(1, "d1", 1.25, contributions=parts), 5, exact=True)
    assert line == "서울 0.50×2.000=1.000, (query tokens beyond top_n) 0.250  (sum of all 2: 1.2500 = the score)"
