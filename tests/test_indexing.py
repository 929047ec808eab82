"""ko-sparse index and search without a cluster: batching, checkpoints, index metadata, explanations."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from ko_sparse.data.documents import BadRow, Document
from ko_sparse.export.token_strings import TokenCollisionError
from ko_sparse.opensearch.corpus_index import IndexMeta
from ko_sparse.opensearch.progress import Progress, ResumeError, open_failures, starting_point
from ko_sparse.opensearch.query_tokens import QueryTokenLimits
from ko_sparse.opensearch.search import contributions
from ko_sparse.workflows.indexing import batches
from ko_sparse.workflows.sources import BatchCache, LocalEncoder


def test_batches_carry_the_bad_rows_and_end_after_their_last_row():
    rows = [Document(0, "a", "가"), BadRow(1, "f:2", "bad"), Document(2, "b", "나"), Document(3, "c", "다")]
    rows.append(BadRow(4, "f:5", "bad"))
    first, second = batches(iter(rows), 2)
    assert [d.doc_id for d in first.documents] == ["a", "b"] and len(first.bad_rows) == 1 and first.end_offset == 3
    assert [d.doc_id for d in second.documents] == ["c"] and second.end_offset == 5


def test_an_unfinished_run_is_resumed_or_restarted_never_dropped(tmp_path):
    saved = Progress("docs", "corpus-v1", "settings", next_offset=500, indexed=480, skipped=20)
    saved.save(tmp_path)
    with pytest.raises(ResumeError, match=r"stopped after source row 500 .* add --resume"):
        starting_point(tmp_path, "docs", "corpus-v1", "settings", resume=False, restart=False)
    resumed = starting_point(tmp_path, "docs", "corpus-v1", "settings", resume=True, restart=False)
    assert (resumed.next_offset, resumed.indexed, resumed.runs) == (500, 480, 2)
    assert starting_point(tmp_path, "docs", "corpus-v1", "settings", resume=False, restart=True).next_offset == 0
    with pytest.raises(ResumeError, match="the corpus is not the one"):
        starting_point(tmp_path, "docs", "corpus-v2", "settings", resume=True, restart=False)
    with pytest.raises(ResumeError, match="other settings"):
        starting_point(tmp_path, "docs", "corpus-v1", "other", resume=True, restart=False)
    saved.complete = True
    saved.save(tmp_path)
    assert starting_point(tmp_path, "docs", "corpus-v1", "settings", resume=False, restart=False).next_offset == 0


def test_the_failures_file_is_cut_back_to_the_checkpoint(tmp_path):
    progress = Progress("docs", "c", "s")
    with open_failures(tmp_path, progress) as failures:
        failures.write('{"offset": 1}\n')
        progress.failures_bytes = failures.tell()
        failures.write('{"offset": 9}\n')  # written after the last checkpoint: a resumed run rewrites it
    progress.runs += 1  # as starting_point counts a resumed run
    with open_failures(tmp_path, progress) as failures:
        failures.write('{"offset": 9}\n')
    assert (tmp_path / "failures.jsonl").read_text().splitlines() == ['{"offset": 1}', '{"offset": 9}']


def test_a_new_run_keeps_the_failures_of_earlier_runs(tmp_path):
    for offset in (1, 2):  # two complete runs, each with one failure
        with open_failures(tmp_path, Progress("docs", "c", "s")) as failures:
            failures.write(f'{{"offset": {offset}}}\n')
    resumed = Progress("docs", "c", "s", runs=2, failures_bytes=len('{"offset": 2}\n'))
    with open_failures(tmp_path, resumed) as failures:
        failures.write('{"offset": 3}\n')
    assert (tmp_path / "failures-1.jsonl").read_text() == '{"offset": 1}\n'
    assert (tmp_path / "failures.jsonl").read_text().splitlines() == ['{"offset": 2}', '{"offset": 3}']
    with open_failures(tmp_path, Progress("docs", "c", "s")):
        pass
    assert (tmp_path / "failures-2.jsonl").read_text().splitlines() == ['{"offset": 2}', '{"offset": 3}']
    assert (tmp_path / "failures.jsonl").read_text() == ""


def test_local_encoding_refuses_a_vocabulary_whose_token_strings_collide(colliding_tokenizer):
    encoder = SimpleNamespace(tokenizer=colliding_tokenizer, to=lambda device: None)
    with pytest.raises(TokenCollisionError, match=r"'서울': \[1, 2\]"):
        LocalEncoder(SimpleNamespace(encoder=encoder), max_length=16, device="cpu")


def meta(**changes) -> IndexMeta:
    base = dict(encode="local", encoder="sha256:aaa", vocabulary="v1", model="m1", max_length=64, bm25_analyzer="ws")
    return IndexMeta(**{**base, **changes})


def test_index_meta_round_trips_through_the_mapping_and_names_every_conflict():
    built = meta()
    assert IndexMeta.from_mapping({"_meta": built.as_meta()}) == built
    assert IndexMeta.from_mapping({"properties": {}}) is None
    assert built.conflicts(meta()) == []
    problems = built.conflicts(meta(vocabulary="v2", encoder="sha256:bbb", model="m2", pruning="top_k=64"))
    assert any("another vocabulary" in p for p in problems)
    assert any("encoded by m1" in p and "not by m2" in p for p in problems)
    assert any("pruning is None" in p for p in problems)
    assert meta(vocabulary=None).conflicts(meta(vocabulary="v2")) == []  # unknown vocabulary: the encoder decides


EXPLANATION = {
    "value": 3.7691407,
    "description": "sum of:",
    "details": [
        {
            "value": 3.0,
            "description": "Linear function on the embedding field for the 당뇨병 feature, computed as w * S from:",
            "details": [
                {"value": 2.0, "description": "w, weight of this function", "details": []},
                {"value": 1.5, "description": "S, feature value", "details": []},
            ],
        },
        {
            "value": 0.76914066,
            "description": "Linear function on the embedding field for the ##치료 feature, computed as w * S from:",
            "details": [
                {"value": 1.1, "description": "w, weight of this function", "details": []},
                {"value": 0.69921875, "description": "S, feature value", "details": []},
            ],
        },
        {
            "value": 0.0766057,
            "description": "weight(morphemes:당뇨병 in 0) [PerFieldSimilarity], result of:",
            "details": [{"value": 0.0766057, "description": "score(freq=1.0), computed as ...", "details": []}],
        },
    ],
}


def test_lucene_explanations_become_token_contributions():
    found = contributions(EXPLANATION)
    assert [(c.token, c.source) for c in found] == [("당뇨병", "sparse"), ("##치료", "sparse"), ("당뇨병", "bm25")]
    assert found[1].query_weight == 1.1 and found[1].document_weight == 0.69921875
    assert sum(c.score for c in found[:2]) == pytest.approx(3.7691407, rel=1e-6)


def test_the_batch_cache_gives_back_what_it_was_given(tmp_path):
    cache = BatchCache(tmp_path, "settings")
    vectors = sp.csr_matrix(np.array([[0, 1.5, 0], [0.25, 0, 0]], dtype=np.float32))
    assert cache.get(["가", "나"]) is None
    cache.put(["가", "나"], vectors, ["가 다", "나"])
    got, morphemes = cache.get(["가", "나"])
    assert (got != vectors).nnz == 0 and morphemes == ["가 다", "나"]
    cache.put(["다"], None, ["다"])
    assert cache.get(["다"]) == (None, ["다"])
    assert BatchCache(tmp_path, "other settings").get(["가", "나"]) is None
    assert json.loads(json.dumps(morphemes)) == morphemes


def test_a_hybrid_query_leaves_room_for_its_bm25_terms():
    limits = QueryTokenLimits(max_clauses=5)
    tokens = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0}
    assert limits.apply(tokens) == tokens
    assert limits.apply(tokens, reserve=2) == {"a": 5.0, "b": 4.0, "c": 3.0}
    assert limits.truncated_queries == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--encode", "local"], "--encode local needs --model"),
        (["--model-id", "x", "--resume", "--restart"], "--resume and --restart exclude each other"),
        (["--model-id", "x", "--prune", "top:3"], "--prune 'top:3'"),
    ],
)
def test_index_options_are_checked_before_anything_is_sent(options, message, tmp_path):
    from click.testing import CliRunner

    from ko_sparse.cli.main import cli

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "당뇨병"}\n', encoding="utf-8")
    arguments = ["index", "--host", "127.0.0.1:1", "--index", "x", "--corpus", str(corpus), *options]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2 and message in result.output


def test_an_unreadable_corpus_is_named(tmp_path):
    from click.testing import CliRunner

    from ko_sparse.cli.main import cli

    arguments = ["index", "--host", "127.0.0.1:1", "--index", "x", "--corpus", str(tmp_path / "nope.jsonl")]
    result = CliRunner().invoke(cli, [*arguments, "--model-id", "x"])
    assert result.exit_code == 2 and "nope.jsonl: file not found" in result.output


def test_local_encoding_with_compile_encodes_through_compiled_blocks(tiny_encoder):
    from ko_sparse.model.doc_only import SparseModel
    from ko_sparse.model.splade import mlm_of
    from ko_sparse.workflows.sources import LocalEncoder

    LocalEncoder(SparseModel(tiny_encoder), 32, device="cpu")
    assert all(layer._compiled_call_impl is None for layer in mlm_of(tiny_encoder).model.layers)
    LocalEncoder(SparseModel(tiny_encoder), 32, device="cpu", compile=True)
    assert all(layer._compiled_call_impl is not None for layer in mlm_of(tiny_encoder).model.layers)


def test_no_step_making_a_seismic_index_searchable_is_held_to_the_default_timeout():
    """The refresh after the bulk clusters segments (minutes at 10^5 documents): it timed out at 10 s before."""
    from types import SimpleNamespace

    from ko_sparse.workflows.indexing import make_searchable

    calls = []

    def record(name):
        return lambda *args, params=None, **kwargs: calls.append((name, params))

    indices = SimpleNamespace(refresh=record("refresh"), forcemerge=record("force_merge"))
    client = SimpleNamespace(indices=indices, transport=SimpleNamespace(perform_request=record("warmup")))
    seconds = make_searchable(client, "docs", force_merge=True, progress_bar=False)
    assert [name for name, _ in calls] == ["refresh", "force_merge", "warmup"]
    assert all(params and params["request_timeout"] >= 3600 for _, params in calls)
    assert set(seconds) == {"refresh_seconds", "force_merge_seconds", "warmup_seconds"}
