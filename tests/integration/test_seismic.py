"""SEISMIC (``sparse_vector``) on the node: what raw high token ids do, and that ko-sparse's remapping scores
every hit with the exact dot product (within the field's byte quantisation)."""

from __future__ import annotations

import json
import random
from dataclasses import asdict

import pytest
from click.testing import CliRunner
from opensearchpy import OpenSearch, TransportError

from ko_sparse.cli.main import cli
from ko_sparse.model.doc_only import load_model
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.corpus_index import EMBEDDING, IndexMeta, MorphemeField, index_body, read_slots
from ko_sparse.opensearch.search import Searcher, SeismicQuery
from ko_sparse.opensearch.seismic import QUANTIZATION_LEVELS, SLOTS, SeismicParameters, TokenSlots, quantized_score

from .index_helpers import index_arguments, korean_passages, write_corpus

EVERY_SEGMENT = SeismicParameters(approximate_threshold=1, n_postings=50, cluster_ratio=0.2)  # approximate always
MAX_LENGTH = 64


@pytest.fixture
def index_name(opensearch: OpenSearch, request) -> str:
    name = f"ko-sparse-test-seismic-{request.node.name.lower()[:40].replace('_', '-')}"
    opensearch.indices.delete(index=name, ignore_unavailable=True)
    yield name
    opensearch.indices.delete(index=name, ignore_unavailable=True)


def raw_seismic_index(client: OpenSearch, name: str) -> None:
    body = index_body(None, MorphemeField(False), None, 1, seismic=EVERY_SEGMENT)
    client.indices.create(index=name, body=body)


def test_a_raw_token_id_above_32767_fails_every_query_on_its_shard(opensearch, index_name):
    """What the node does without the remapping (neural-search 3.6: ids kept in a signed 16-bit short)."""
    raw_seismic_index(opensearch, index_name)
    opensearch.index(index=index_name, id="high", body={EMBEDDING: {"45911": 1.5, "100": 0.7}})
    opensearch.index(index=index_name, id="low", body={EMBEDDING: {"13143": 2.0}}, refresh=True)
    for token, error in (("45911", "-19624"), ("100", "Index -19625 out of bounds")):
        with pytest.raises(TransportError, match=error):
            query = {"neural_sparse": {EMBEDDING: {"query_tokens": {token: 1.0}}}}
            opensearch.search(index=index_name, body={"query": query})


class FixedQueries:
    """Query weights by model token id, as :class:`LocalQueryEncoder` gives them."""

    def __init__(self, queries: dict[str, dict[int, float]]) -> None:
        self.queries = queries

    def token_ids(self, text: str) -> dict[int, float]:
        return self.queries[text]


def random_vector(rng: random.Random, ids: list[int], size: int) -> dict[int, float]:
    return {token: round(rng.uniform(0.05, 2.9), 4) for token in rng.sample(ids, size)}


def test_remapped_ids_above_and_below_32768_score_the_exact_dot_product(opensearch, index_name):
    rng = random.Random(7)
    ids = [*rng.sample(range(5, SLOTS), 60), *rng.sample(range(SLOTS, 50_000), 60)]  # half above 32,767
    documents = {f"d{n}": random_vector(rng, ids, 25) for n in range(80)}
    queries = {f"q{n}": random_vector(rng, ids, 12) for n in range(6)}
    queries["q-large"] = {token: weight * 9 for token, weight in queries["q0"].items()}  # above the search ceiling
    slots = TokenSlots()
    meta = IndexMeta("local", "test", None, method="seismic", method_parameters=asdict(EVERY_SEGMENT))
    body = index_body(meta, MorphemeField(False), None, 1, seismic=EVERY_SEGMENT)
    opensearch.indices.create(index=index_name, body=body)
    for doc_id, vector in documents.items():
        slots.assign(vector)
        value, missing = slots.document(vector)
        assert not missing
        opensearch.index(index=index_name, id=doc_id, body={EMBEDDING: value})
    opensearch.indices.forcemerge(index=index_name, max_num_segments=1)
    opensearch.indices.refresh(index=index_name)
    strings = [f"t{i}" for i in range(50_000)]
    seismic = SeismicQuery(EVERY_SEGMENT, slots, strings, {"k": 100, "top_n": 12, "heap_factor": 100.0})
    searcher = Searcher(opensearch, index_name, MorphemeField(False), FixedQueries(queries), seismic=seismic)
    ceilings = EVERY_SEGMENT.ceilings
    checked = 0
    for name, query in queries.items():
        result = searcher.search(name, "sparse", k=100)
        assert result.hits, name
        for hit in result.hits:
            document = documents[hit.doc_id]
            expected = quantized_score(query, document, ceilings) if name != "q-large" else None
            exact = sum(weight * document.get(token, 0.0) for token, weight in query.items())
            step = max(ceilings) / QUANTIZATION_LEVELS  # half a step on each side of each product, at most
            bound = sum((query[t] + document[t]) * step / 2 + step**2 / 4 for t in set(query) & set(document))
            assert abs(hit.score - exact) <= bound + 1e-4, (name, hit.doc_id)
            if expected is not None:
                assert hit.score == pytest.approx(expected, rel=1e-5), (name, hit.doc_id)
            assert hit.explained == pytest.approx(hit.score, rel=1e-4)
            assert {c.token for c in hit.contributions} <= {f"t{t}" for t in query} | {"(query tokens beyond top_n)"}
            checked += 1
    assert checked >= 20


def run(*arguments: str):
    return CliRunner().invoke(cli, list(arguments))


def test_index_and_search_a_seismic_index_with_method_parameters(
    opensearch, opensearch_url, index_name, saved_model, tmp_path
):
    passages = korean_passages(40)
    corpus = write_corpus(tmp_path / "docs.jsonl", passages)
    arguments = index_arguments(opensearch_url, index_name, corpus, tmp_path / "out", "--model", str(saved_model))
    settings = ["--method", "seismic", "--seismic", "approximate_threshold=1", "--seismic", "n_postings=40"]
    settings.append("--force-merge")
    result = run(*arguments, "--max-length", str(MAX_LENGTH), *settings, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["indexed"], summary["method"]) == (40, "seismic")
    assert summary["method_parameters"]["approximate_threshold"] == 1
    assert set(summary["seismic_ready"]) == {"refresh_seconds", "force_merge_seconds", "warmup_seconds"}
    segments = opensearch.indices.segments(index=index_name)["indices"][index_name]["shards"]["0"][0]["segments"]
    assert len(segments) == 1
    mapping = opensearch.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"][EMBEDDING]["type"] == "sparse_vector"
    assert mapping["_meta"]["ko_sparse"]["method"] == "seismic"
    stored = read_slots(opensearch, index_name)
    assert stored and len(stored) == summary["token_slots"] and max(stored) >= SLOTS  # high ids, remapped

    model = load_model(saved_model, MAX_LENGTH)
    strings = token_strings(model.encoder.tokenizer)
    texts = [text for _, text in passages]
    vectors = encode_sparse(model.encoder, texts, 32, MAX_LENGTH)
    documents = {
        doc_id: {int(i): float(w) for i, w in zip(vectors[n].indices, vectors[n].data, strict=True) if strings[i]}
        for n, (doc_id, _) in enumerate(passages)
    }
    ceilings = SeismicParameters(**mapping["_meta"]["ko_sparse"]["method_parameters"]).ceilings
    search = [
        "search", "--host", opensearch_url, "--index", index_name, "--k", "5", "--json",
        "--method-parameter", "k=50", "--method-parameter", "heap_factor=50", "--method-parameter", "top_n=20",
    ]  # fmt: skip
    result = run(*search, passages[0][1][:40], passages[3][1][:40])
    assert result.exit_code == 0, result.output
    from ko_sparse.workflows.query_encoder import LocalQueryEncoder

    encoder = LocalQueryEncoder(load_model(saved_model, setting="--model"))
    for found in json.loads(result.output):
        assert found["hits"]
        query = encoder.token_ids(found["query"])
        for hit in found["hits"]:
            assert hit["score"] == pytest.approx(quantized_score(query, documents[hit["doc_id"]], ceilings), rel=1e-4)
            assert sum(c["score"] for c in hit["contributions"]) == pytest.approx(hit["score"], rel=1e-4)
    hybrid = run(*search, "--mode", "hybrid", passages[2][1][:40])
    assert hybrid.exit_code == 0, hybrid.output
    assert json.loads(hybrid.output)[0]["hits"][0]["doc_id"] == passages[2][0]
    morphemes = dict(zip((doc_id for doc_id, _ in passages), MorphemeField(False).values(texts), strict=True))
    term = max(morphemes[passages[5][0]].split(), key=len)
    having = {doc_id for doc_id, value in morphemes.items() if term in value.split()}
    only = json.dumps({"term": {"morphemes": term}})  # an ids filter fails on neural-search 3.6 (see docs)
    filtered = run(*search, "--filter", only, passages[5][1][:40])
    assert filtered.exit_code == 0, filtered.output
    hits = {hit["doc_id"] for hit in json.loads(filtered.output)[0]["hits"]}
    assert passages[5][0] in hits and hits <= having


def test_another_method_or_a_bad_method_parameter_is_one_line_and_writes_nothing(
    opensearch, opensearch_url, index_name, saved_model, tmp_path
):
    corpus = write_corpus(tmp_path / "docs.jsonl", korean_passages(12))
    arguments = index_arguments(opensearch_url, index_name, corpus, tmp_path / "out", "--model", str(saved_model))
    assert run(*arguments, "--max-length", str(MAX_LENGTH)).exit_code == 0  # an exact index
    before = opensearch.count(index=index_name)["count"]
    other = run(*arguments, "--max-length", str(MAX_LENGTH), "--method", "seismic", "--resume")
    assert other.exit_code == 1 and "built with --method exact" in other.output
    assert len(other.output.strip().splitlines()) == 1
    assert opensearch.count(index=index_name)["count"] == before
    tuned = run("search", "--host", opensearch_url, "--index", index_name, "--method-parameter", "k=5", "수도")
    assert tuned.exit_code == 2 and "apply to a seismic index" in tuned.output
    bad = run("search", "--host", opensearch_url, "--index", index_name, "--method-parameter", "k=0", "수도")
    assert bad.exit_code == 2 and "k must be positive" in bad.output


def test_a_second_run_keeps_the_saved_slots_and_adds_to_them(
    opensearch, opensearch_url, index_name, saved_model, tmp_path
):
    passages = korean_passages(30)
    settings = ["--max-length", str(MAX_LENGTH), "--method", "seismic", "--seismic", "approximate_threshold=1"]
    slots = []
    for part, chunk in enumerate((passages[:15], passages[15:])):
        corpus = write_corpus(tmp_path / f"part{part}.jsonl", chunk)
        output = tmp_path / f"out{part}"
        arguments = index_arguments(opensearch_url, index_name, corpus, output, "--model", str(saved_model))
        result = run(*arguments, *settings, "--json")
        assert result.exit_code == 0, result.output
        slots.append(read_slots(opensearch, index_name))
    assert slots[1][: len(slots[0])] == slots[0] and len(slots[1]) > len(slots[0])
    assert opensearch.count(index=index_name)["count"] == 30
    model = load_model(saved_model, MAX_LENGTH)
    strings = token_strings(model.encoder.tokenizer)
    meta = opensearch.indices.get_mapping(index=index_name)[index_name]["mappings"]["_meta"]["ko_sparse"]
    ceilings = SeismicParameters(**meta["method_parameters"]).ceilings
    wide = {"k": 30, "top_n": 30, "heap_factor": 100.0}
    vectors = encode_sparse(model.encoder, [passages[0][1], passages[20][1]], 32, MAX_LENGTH)
    for row, doc_id in enumerate((passages[0][0], passages[20][0])):  # one document of each run
        pairs = zip(vectors[row].indices, vectors[row].data, strict=True)
        document = {slots[1].index(int(i)): float(w) for i, w in pairs if strings[i]}  # by field id
        tokens = {str(token): 1.0 for token in document}
        query = {"neural_sparse": {EMBEDDING: {"query_tokens": tokens, "method_parameters": wide}}}
        body = {"query": {"bool": {"must": [query], "filter": [{"ids": {"values": [doc_id]}}]}}}
        (hit,) = opensearch.search(index=index_name, body=body)["hits"]["hits"]
        expected = quantized_score(dict.fromkeys(document, 1.0), document, ceilings)
        assert hit["_score"] == pytest.approx(expected, rel=1e-4)
