"""Two-phase search for exact indices: the pipeline body, the options and their refusals (no node)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.cli.search import pipeline_choice
from ko_sparse.errors import InputError
from ko_sparse.opensearch.corpus_index import IndexMeta, MorphemeField, index_body
from ko_sparse.opensearch.pipelines import PRUNE_TYPES
from ko_sparse.opensearch.search import PipelineChoice, Searcher
from ko_sparse.opensearch.two_phase import BYPASS, TwoPhaseParameters, pipeline_name


def test_the_pipeline_holds_the_processor_with_every_parameter():
    parameters = TwoPhaseParameters.parse(["prune_ratio=0.3", "expansion_rate=2", "max_window_size=500"])
    (processor,) = parameters.pipeline()["request_processors"]
    assert processor == {
        "neural_sparse_two_phase_processor": {
            "enabled": True,
            "two_phase_parameter": {
                "prune_type": "max_ratio",
                "prune_ratio": 0.3,
                "expansion_rate": 2.0,
                "max_window_size": 500,
            },
        }
    }
    assert TwoPhaseParameters.parse([]) == TwoPhaseParameters("max_ratio", 0.4, 5.0, 10_000)
    assert pipeline_name("docs") == "docs-two-phase"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("window=5", "NAME one of prune_type, prune_ratio, expansion_rate, max_window_size"),
        ("prune_ratio=high", "prune_ratio takes a number"),
        ("prune_ratio=1.0", r"prune_ratio 1.0 for prune_type max_ratio: expected a value in \[0, 1\)"),
        ("prune_ratio=-0.1", r"in \[0, 1\)"),
        ("expansion_rate=0.5", "expansion_rate 0.5: expected a value >= 1"),
        ("max_window_size=49", "max_window_size 49: expected a whole number >= 50"),
        ("max_window_size=1e3", "max_window_size takes a whole number"),
        ("prune_type=none", "prune_type 'none': expected one of max_ratio, alpha_mass, top_k, abs_value"),
    ],
)
def test_a_parameter_the_node_would_refuse_or_ignore_is_one_line(setting, message):
    with pytest.raises(InputError, match=message):
        TwoPhaseParameters.parse([setting])


@pytest.mark.parametrize(
    ("prune_type", "ratio", "accepted"),
    [
        ("top_k", 5, True),
        ("top_k", 0.5, False),
        ("top_k", 0, False),
        ("alpha_mass", 0.99, True),
        ("alpha_mass", 1.0, False),
        ("abs_value", 3.0, True),
        ("abs_value", -1.0, False),
        ("max_ratio", 0.0, True),
    ],
)
def test_the_ranges_are_the_nodes_for_each_prune_type(prune_type, ratio, accepted):
    assert (TwoPhaseParameters(prune_type, ratio).problem() is None) is accepted
    assert prune_type in PRUNE_TYPES  # the ingest pruning's types too


def test_meta_records_two_phase_and_another_setting_conflicts():
    parameters = asdict(TwoPhaseParameters(prune_ratio=0.3))
    built = IndexMeta("local", "e", "v", two_phase=parameters)
    body = index_body(built, MorphemeField(False), None, 1, search_pipeline="docs-two-phase")
    assert body["settings"]["index.search.default_pipeline"] == "docs-two-phase"
    assert IndexMeta.from_mapping(body["mappings"]).two_phase_parameters == TwoPhaseParameters(prune_ratio=0.3)
    assert built.conflicts(IndexMeta("local", "e", "v", two_phase=parameters)) == []
    (without,) = built.conflicts(IndexMeta("local", "e", "v"))
    assert without.startswith("it was built with --two-phase (prune_type=max_ratio, prune_ratio=0.3")
    assert "this run asks for no --two-phase" in without
    (other,) = built.conflicts(IndexMeta("local", "e", "v", two_phase=asdict(TwoPhaseParameters())))
    assert "this run asks for --two-phase (prune_type=max_ratio, prune_ratio=0.4" in other


def index(*options: str, corpus) -> object:
    arguments = ["index", "--host", "127.0.0.1:9", "--index", "x", "--corpus", str(corpus), *options]
    return CliRunner().invoke(cli, arguments)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--two-phase-parameter", "prune_ratio=0.3"], "--two-phase-parameter applies to --two-phase"),
        (["--two-phase", "--method", "seismic"], "--two-phase applies to --method exact"),
        (["--two-phase", "--two-phase-parameter", "expansion_rate=0"], "expansion_rate 0.0: expected a value >= 1"),
    ],
)
def test_index_refuses_two_phase_options_before_reaching_the_cluster(tmp_path, options, message):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"_id": "d1", "text": "수도"}) + "\n", encoding="utf-8")
    result = index(*options, corpus=corpus)
    assert result.exit_code == 2 and message in result.output
    assert "127.0.0.1:9" not in result.output  # refused before connecting


def test_search_two_phase_choice():
    exact = IndexMeta("local", "e", "v")
    two_phase = IndexMeta("local", "e", "v", two_phase=asdict(TwoPhaseParameters()))
    assert pipeline_choice("docs", two_phase, "sparse", None) == PipelineChoice(None, TwoPhaseParameters().describe())
    assert pipeline_choice("docs", two_phase, "sparse", False).name == BYPASS
    assert pipeline_choice("docs", exact, "sparse", False).name == BYPASS  # harmless: no default to bypass
    with pytest.raises(InputError, match="--two-phase: index docs was built without it"):
        pipeline_choice("docs", exact, "sparse", True)
    with pytest.raises(InputError, match="--two-phase applies to --mode sparse"):
        pipeline_choice("docs", two_phase, "hybrid", True)


class Tokens:
    def tokens(self, text: str) -> dict[str, float]:
        return {"수도": 1.0, "서울": 0.2}


@pytest.mark.parametrize(("choice", "params"), [(None, {}), (BYPASS, {"search_pipeline": BYPASS})])
def test_a_sparse_request_names_the_pipeline_only_to_bypass_it(choice, params):
    searcher = Searcher(None, "docs", MorphemeField(False), Tokens(), pipeline=PipelineChoice(choice, "prune"))
    body, sent, result = searcher.request("수도", "sparse", 5)
    assert sent == params and body["query"] == {"neural_sparse": {"embedding": {"query_tokens": Tokens().tokens("")}}}
    assert result.notes == [
        "two-phase search (prune): the strongest query tokens found the candidates, all rescored"
        if choice is None
        else "two-phase bypassed (--no-two-phase): every query token searched"
    ]
    assert PipelineChoice(choice, "prune").notes("hybrid") == [
        "two-phase does not apply to a hybrid query: its sparse side searches every query token"
    ]
    assert PipelineChoice(choice, None).notes("sparse") == []
