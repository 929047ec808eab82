"""ko-sparse index and search on the node: bad rows reported, local and pipeline encoding agree, explanations
add up, another model refused, Ctrl-C then --resume ends as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import time

import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.model.doc_only import load_model
from ko_sparse.opensearch.rank_features import stored_value
from tests.integration.index_helpers import (
    QUERIES,
    committed,
    fresh_vectors,
    index_arguments,
    korean_passages,
    run_index,
    start_index,
    stored_ids,
    write_corpus,
)

MAX_LENGTH = "64"
LOCAL, PIPELINE = "ko-sparse-test-index-local", "ko-sparse-test-index-pipeline"
BAD_LINES = {5: "{not json", 9: '{"_id": "empty", "text": "  "}', 14: '["a", "list"]'}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """300 passages as JSONL with three broken rows at known lines."""
    passages = korean_passages(300)
    lines = [json.dumps({"_id": doc_id, "text": text}, ensure_ascii=False) for doc_id, text in passages]
    for line_number, bad in sorted(BAD_LINES.items()):
        lines.insert(line_number - 1, bad)
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, dict(passages)


@pytest.fixture(scope="module")
def local_index(opensearch, opensearch_url, trained_tiny_model, corpus, tmp_path_factory):
    opensearch.indices.delete(index=LOCAL, ignore_unavailable=True)
    output = tmp_path_factory.mktemp("local")
    summary = run_index(
        index_arguments(
            opensearch_url, LOCAL, corpus[0], output, "--model", str(trained_tiny_model), "--max-length", MAX_LENGTH
        )
    )
    yield summary, output
    opensearch.indices.delete(index=LOCAL, ignore_unavailable=True)


def test_malformed_rows_are_reported_with_their_line_numbers_and_the_rest_indexed(opensearch, local_index, corpus):
    summary, output = local_index
    failures = [json.loads(line) for line in (output / "failures.jsonl").read_text().splitlines()]
    assert [int(f["where"].rsplit(":", 1)[1]) for f in failures] == sorted(BAD_LINES)
    assert all(f["stage"] == "source" and f["reason"] for f in failures)
    assert (summary["indexed"], summary["skipped"], summary["failed"]) == (300, 3, 0)
    assert opensearch.count(index=LOCAL)["count"] == 300
    assert sorted(stored_ids(opensearch, LOCAL)) == sorted(corpus[1])
    mapping = opensearch.indices.get_mapping(index=LOCAL)[LOCAL]["mappings"]
    assert mapping["_meta"]["ko_sparse"]["encode"] == "local"
    assert mapping["_meta"]["ko_sparse"]["vocabulary"] and mapping["properties"]["embedding"]["type"] == "rank_features"


def search(url: str, index: str, mode: str, *options: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["search", "--host", url, "--index", index, "--mode", mode, *options, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_search_explanations_add_up_to_the_hit_scores(opensearch_url, local_index, trained_tiny_model, corpus):
    model = load_model(trained_tiny_model, int(MAX_LENGTH))
    texts = list(corpus[1].values())  # encoded as the command did: one batch, in corpus order
    encoded = dict(zip(corpus[1], fresh_vectors(model, texts, int(MAX_LENGTH), 500, None), strict=True))
    for mode in ("sparse", "bm25"):
        results = search(opensearch_url, LOCAL, mode, "--k", "5", *QUERIES[:3])
        assert len(results) == 3 and all(result["hits"] for result in results)
        for result in results:
            for hit in result["hits"]:
                parts = hit["contributions"]
                assert parts and sum(p["score"] for p in parts) == pytest.approx(hit["score"], rel=1e-5)
                if mode != "sparse":
                    assert {p["source"] for p in parts} == {"bm25"}
                    continue
                expected = encoded[hit["doc_id"]]
                for part in parts:
                    assert part["query_weight"] == pytest.approx(result["query_tokens"][part["token"]], rel=1e-6)
                    assert part["score"] == pytest.approx(part["query_weight"] * part["document_weight"], rel=1e-5)
                    quantised = float(stored_value([expected[part["token"]]])[0])
                    assert part["document_weight"] == pytest.approx(quantised, rel=2**-8)


def test_local_and_pipeline_encoding_give_the_same_top_ten(
    opensearch, opensearch_url, ml, local_index, trained_tiny_model, corpus, tmp_path
):
    from ko_sparse.export.package import package_model
    from ko_sparse.opensearch.preflight import cluster_facts
    from ko_sparse.workflows.register import Registrar

    manifest, _ = package_model(trained_tiny_model, tmp_path / "package", max_length=int(MAX_LENGTH))
    registrar = Registrar(opensearch, progress=False)
    group = registrar.model_group("ko-sparse-test-index")
    registered = registrar.register(tmp_path / "package", manifest.artifacts[0], group, True)
    model_id = registered.model_id
    opensearch.indices.delete(index=PIPELINE, ignore_unavailable=True)
    try:
        registrar.deploy(registered, cluster_facts(opensearch, opensearch_url))
        summary = run_index(
            index_arguments(
                opensearch_url,
                PIPELINE,
                corpus[0],
                tmp_path / "out",
                "--encode",
                "pipeline",
                "--model-id",
                model_id,
                "--model",
                str(trained_tiny_model),
            )
        )
        assert (summary["indexed"], summary["skipped"], summary["encode"]) == (300, 3, "pipeline")
        pipeline_meta = opensearch.indices.get_mapping(index=PIPELINE)[PIPELINE]["mappings"]["_meta"]["ko_sparse"]
        local_meta = opensearch.indices.get_mapping(index=LOCAL)[LOCAL]["mappings"]["_meta"]["ko_sparse"]
        assert pipeline_meta["vocabulary"] == local_meta["vocabulary"]
        arguments = ["--k", "10", *QUERIES]
        local = search(opensearch_url, LOCAL, "sparse", "--model", str(trained_tiny_model), *arguments)
        cluster = search(opensearch_url, PIPELINE, "sparse", "--model", str(trained_tiny_model), *arguments)
    finally:
        opensearch.indices.delete(index=PIPELINE, ignore_unavailable=True)
        opensearch.ingest.delete_pipeline(id=f"{PIPELINE}-sparse-encoding", ignore=[404])
        ml.remove(model_id)
    for ours, theirs in zip(local, cluster, strict=True):
        our_ids = [hit["doc_id"] for hit in ours["hits"]]
        their_ids = [hit["doc_id"] for hit in theirs["hits"]]
        our_scores = [hit["score"] for hit in ours["hits"]]
        their_scores = [hit["score"] for hit in theirs["hits"]]
        assert len(our_ids) == 10
        # the same ten; only near-ties may swap (TorchScript vs eager float error, 9-bit storage)
        assert our_ids == their_ids or (
            set(our_ids[:9]) <= set(their_ids) and their_scores == pytest.approx(our_scores, rel=5e-3)
        )


def test_an_index_built_by_another_model_is_refused(opensearch_url, local_index, corpus, tiny_encoder, tmp_path):
    tiny_encoder.save(str(tmp_path / "other"))
    result = CliRunner().invoke(
        cli,
        index_arguments(opensearch_url, LOCAL, corpus[0], tmp_path / "out", "--model", str(tmp_path / "other")),
    )
    assert result.exit_code == 1
    assert f"index {LOCAL} cannot take these documents" in result.output and "encoded by" in result.output


def test_ctrl_c_then_resume_ends_as_an_uninterrupted_run(opensearch, opensearch_url, trained_tiny_model, tmp_path):
    index = "ko-sparse-test-index-interrupted"
    passages = korean_passages(600)
    corpus = write_corpus(tmp_path / "docs.jsonl", passages)
    options = ("--model", str(trained_tiny_model), "--max-length", MAX_LENGTH, "--prune", "top_k:32")
    arguments = index_arguments(opensearch_url, index, corpus, tmp_path / "out", *options, "--batch-size", "25")
    opensearch.indices.delete(index=index, ignore_unavailable=True)
    try:
        process = start_index(arguments, tmp_path / "first.log")
        deadline = time.monotonic() + 300
        while committed(tmp_path / "out") < 100 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 1
        log = (tmp_path / "first.log").read_text()
        assert "interrupted" in log and "--resume" in log, log[-2000:]
        stopped_at = committed(tmp_path / "out")
        assert 100 <= stopped_at < len(passages)
        again = CliRunner().invoke(cli, arguments)  # without --resume: refused, nothing dropped
        assert again.exit_code == 1 and "add --resume" in again.output
        summary = run_index([*arguments, "--resume"])
        assert summary["resumed_from_row"] == stopped_at and summary["runs"] == 2
        assert summary["indexed"] == summary["documents_in_index"] == len(passages)
        ids = stored_ids(opensearch, index)
        assert len(ids) == len(set(ids)) == len(passages) and set(ids) == {doc_id for doc_id, _ in passages}

        progress = json.loads((tmp_path / "out" / "progress.json").read_text())
        (tmp_path / "out" / "progress.json").write_text(json.dumps({**progress, "complete": False}))
        opensearch.indices.delete(index=index)  # what the earlier run committed is gone: resuming would lose it
        gone = CliRunner().invoke(cli, [*arguments, "--resume"])
        assert gone.exit_code == 1 and "no longer exists" in gone.output and "--restart" in gone.output
        assert not opensearch.indices.exists(index=index)
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)


def test_row_number_ids_never_replace_another_corpus_documents(opensearch, opensearch_url, saved_model, tmp_path):
    index = "ko-sparse-test-index-row-ids"
    opensearch.indices.delete(index=index, ignore_unavailable=True)
    passages = korean_passages(20)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps({"text": text}) + "\n" for _, text in passages[:10]), encoding="utf-8")
    rows = [json.dumps({"doc": doc_id, "text": text}) + "\n" for doc_id, text in passages[10:]]
    second.write_text("".join(rows), encoding="utf-8")
    model = ("--model", str(saved_model), "--max-length", MAX_LENGTH)
    try:
        assert run_index(index_arguments(opensearch_url, index, first, tmp_path / "a", *model))["indexed"] == 10
        refused = CliRunner().invoke(cli, index_arguments(opensearch_url, index, second, tmp_path / "b", *model))
        assert refused.exit_code == 1 and "--id-field" in refused.output
        assert opensearch.get(index=index, id="0")["_source"]["text"] == passages[0][1]
        again = run_index(index_arguments(opensearch_url, index, first, tmp_path / "a", *model))  # its own ids
        assert (again["indexed"], again["documents_in_index"]) == (10, 10)
        added = run_index(index_arguments(opensearch_url, index, second, tmp_path / "b", *model, "--id-field", "doc"))
        assert added["documents_in_index"] == 20
        assert sorted(stored_ids(opensearch, index)) == sorted(
            [str(row) for row in range(10)] + [p[0] for p in passages[10:]]
        )
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
