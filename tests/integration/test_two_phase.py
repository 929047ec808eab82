"""Two-phase search on the node: ``ko-sparse index --two-phase`` makes neural-search's two-phase processor the
exact index's default search pipeline, every hit it returns keeps its exact dot product, ``search
--no-two-phase`` bypasses it, and the refusals write nothing."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from opensearchpy import OpenSearch, TransportError

from ko_sparse.cli.main import cli
from ko_sparse.opensearch.corpus_index import EMBEDDING
from ko_sparse.opensearch.two_phase import TwoPhaseParameters, pipeline_name

from .index_helpers import index_arguments, korean_passages, write_corpus

MAX_LENGTH = 64
PASSAGES = 40
SETTINGS = ["--two-phase", "--two-phase-parameter", "prune_ratio=0.4", "--two-phase-parameter", "expansion_rate=5"]


@pytest.fixture
def index_name(opensearch: OpenSearch) -> str:
    name = f"ko-sparse-test-two-phase-{uuid.uuid4().hex[:8]}"
    yield name
    opensearch.indices.delete(index=name, ignore_unavailable=True)
    opensearch.search_pipeline.delete(id=pipeline_name(name), ignore=[404])


def run(*arguments: str):
    return CliRunner().invoke(cli, list(arguments))


def build(opensearch_url, index_name, saved_model, tmp_path, *options: str) -> tuple[list, list[str]]:
    passages = korean_passages(PASSAGES)
    corpus = write_corpus(tmp_path / "docs.jsonl", passages)
    arguments = index_arguments(opensearch_url, index_name, corpus, tmp_path / "out", "--model", str(saved_model))
    arguments += ["--max-length", str(MAX_LENGTH)]
    result = run(*arguments, *options, "--json")
    assert result.exit_code == 0, result.output
    return passages, arguments


def search(opensearch_url, index_name, texts, *options: str) -> list[dict]:
    result = run("search", "--host", opensearch_url, "--index", index_name, "--json", *options, *texts)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_two_phase_is_the_default_keeps_exact_scores_and_no_two_phase_bypasses_it(
    opensearch, opensearch_url, index_name, saved_model, tmp_path
):
    passages, _ = build(opensearch_url, index_name, saved_model, tmp_path, *SETTINGS)
    name = pipeline_name(index_name)
    settings = opensearch.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert settings["search"]["default_pipeline"] == name
    stored = opensearch.search_pipeline.get(id=name)[name]["request_processors"][0]
    assert stored["neural_sparse_two_phase_processor"]["two_phase_parameter"]["prune_ratio"] == 0.4
    meta = opensearch.indices.get_mapping(index=index_name)[index_name]["mappings"]["_meta"]["ko_sparse"]
    assert TwoPhaseParameters(**meta["two_phase"]) == TwoPhaseParameters(prune_ratio=0.4, expansion_rate=5.0)

    texts = [text[:40] for _, text in passages[:6]]
    two_phase = search(opensearch_url, index_name, texts, "--k", "5")
    exact = search(opensearch_url, index_name, texts, "--k", str(PASSAGES), "--no-two-phase")
    for pruned, full, (doc_id, _) in zip(two_phase, exact, passages[:6], strict=True):
        scores = {hit["doc_id"]: hit["score"] for hit in full["hits"]}
        assert pruned["hits"][0]["doc_id"] == full["hits"][0]["doc_id"] == doc_id  # pruning keeps the top
        for hit in pruned["hits"]:  # phase two rescored the window with every query token: the exact dot product
            assert hit["score"] == pytest.approx(scores[hit["doc_id"]], rel=1e-6)
        assert any(note.startswith("two-phase search (prune_type=max_ratio") for note in pruned["notes"])
        assert "two-phase bypassed (--no-two-phase): every query token searched" in full["notes"]

    # a document holding only a weak query token (below 0.4 x the strongest), with a weight that makes it the
    # best exact match: the exact search ranks it first, two-phase never sees it (phase one searches the strong
    # tokens only), which shows the default pipeline prunes and --no-two-phase does not
    query = two_phase[0]["query_tokens"]
    weak = min(query, key=query.get)
    assert query[weak] < 0.4 * max(query.values())
    weight = 10 * exact[0]["hits"][0]["score"] / query[weak]  # ten times the best score
    opensearch.index(index=index_name, id="weak-only", body={EMBEDDING: {weak: weight}}, refresh=True)
    (pruned,) = search(opensearch_url, index_name, texts[:1], "--k", "5")
    (full,) = search(opensearch_url, index_name, texts[:1], "--k", "5", "--no-two-phase")
    assert full["hits"][0]["doc_id"] == "weak-only"
    assert "weak-only" not in {hit["doc_id"] for hit in pruned["hits"]}
    (hybrid,) = search(opensearch_url, index_name, texts[:1], "--k", "5", "--mode", "hybrid")
    assert "weak-only" in {hit["doc_id"] for hit in hybrid["hits"]}  # the node does not prune inside hybrid
    assert "two-phase does not apply to a hybrid query: its sparse side searches every query token" in hybrid["notes"]


def test_other_two_phase_settings_or_none_are_refused_and_write_nothing(
    opensearch, opensearch_url, index_name, saved_model, tmp_path
):
    _, arguments = build(opensearch_url, index_name, saved_model, tmp_path, *SETTINGS)
    name = pipeline_name(index_name)
    pipeline = opensearch.search_pipeline.get(id=name)
    mapping = opensearch.indices.get_mapping(index=index_name)
    count = opensearch.count(index=index_name)["count"]
    other = [*SETTINGS[:-1], "expansion_rate=2"]
    for options in (other, [], ["--two-phase", "--two-phase-parameter", "max_window_size=10"]):
        result = run(*arguments, *options, "--resume")
        assert result.exit_code in (1, 2), result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert opensearch.search_pipeline.get(id=name) == pipeline
        assert opensearch.indices.get_mapping(index=index_name) == mapping
        assert opensearch.count(index=index_name)["count"] == count
    assert (
        "this run asks for --two-phase (prune_type=max_ratio, prune_ratio=0.4, expansion_rate=2.0"
        in run(*arguments, *other, "--resume").output
    )
    refused = run("search", "--host", opensearch_url, "--index", index_name, "--two-phase", "--mode", "bm25", "수도")
    assert refused.exit_code == 2 and "--two-phase applies to --mode sparse" in refused.output


def test_an_exact_index_without_two_phase_refuses_search_two_phase(
    opensearch, opensearch_url, index_name, saved_model, tmp_path
):
    build(opensearch_url, index_name, saved_model, tmp_path)
    settings = opensearch.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert "search" not in settings
    refused = run("search", "--host", opensearch_url, "--index", index_name, "--two-phase", "수도")
    assert refused.exit_code == 2 and f"--two-phase: index {index_name} was built without it" in refused.output


@pytest.mark.parametrize(
    "parameters",
    [
        TwoPhaseParameters("top_k", 5),
        TwoPhaseParameters("top_k", 0.5),
        TwoPhaseParameters("alpha_mass", 0.99),
        TwoPhaseParameters("alpha_mass", 1.0),
        TwoPhaseParameters("abs_value", 0.0),
        TwoPhaseParameters("abs_value", -0.5),
        TwoPhaseParameters("max_ratio", 0.0),
        TwoPhaseParameters("max_ratio", 1.0),
        TwoPhaseParameters(expansion_rate=1.0),
        TwoPhaseParameters(expansion_rate=0.9),
        TwoPhaseParameters(max_window_size=50),
        TwoPhaseParameters(max_window_size=49),
    ],
)
def test_the_node_refuses_exactly_what_the_parameters_refuse(opensearch, parameters):
    name = f"ko-sparse-test-two-phase-range-{uuid.uuid4().hex[:8]}"
    try:
        opensearch.search_pipeline.put(id=name, body=parameters.pipeline())
        accepted = True
    except TransportError as error:
        assert error.status_code == 400, error
        accepted = False
    finally:
        opensearch.search_pipeline.delete(id=name, ignore=[404])
    assert accepted is (parameters.problem() is None)
