"""What the two exact schemes for token ids >= 32,768 on a SEISMIC field cost, on a live node.

``python -m benchmarks.seismic_ids [--host URL] [--repeat 3] [--model-ids]``

Vectors: the 4,875 bundled passages (MIRACL, AutoRAG, Allganize, medical) through the A.X tokenizer, each
input id weighted ``log1p(tf) x idf`` (a doc-only model's shape, no expansion), and the bundled queries
weighted by idf. Exact top 10: the dot product here. Two indices, every segment searched approximately
(``approximate_threshold`` 1, force-merged to one segment):

- remap: one ``sparse_vector`` field, ids remapped onto slots 0 ... 32,767 (:class:`TokenSlots`);
- split: ``embedding`` holds ids below 32,768, ``embedding_hi`` the rest (id - 32,768); the query is a
  ``bool.should`` of one ``neural_sparse`` clause per field.

For each ``method_parameters`` setting: recall@10 against the exact top 10, the share of returned hits
whose score is not the quantised exact dot product (a document found by one clause only), and the node's
``took`` (median over queries and repeats, with its range). ``--model-ids`` also counts the distinct ids a
random-weight tiny model (``tiny:32x1``, expansions everywhere: the worst case) activates on the passages.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import Counter

from opensearchpy import OpenSearch, helpers
from transformers import AutoTokenizer

from ko_sparse.data.retrieval_sets import allganize, autorag, medical, miracl
from ko_sparse.opensearch.client import connect
from ko_sparse.opensearch.corpus_index import EMBEDDING, MorphemeField, index_body
from ko_sparse.opensearch.seismic import SLOTS, SeismicParameters, TokenSlots, quantized_score
from ko_sparse.resources import TOKENIZER_DIR

HIGH = f"{EMBEDDING}_hi"
SETTINGS = (
    {"k": 10, "top_n": 10, "heap_factor": 1.0},
    {"k": 50, "top_n": 10, "heap_factor": 1.0},
    {"k": 50, "top_n": 20, "heap_factor": 1.5},
)


def weighted(texts: list[str], tokenizer, idf: dict[int, float] | None, max_length: int = 512):
    rows = []
    for text in texts:
        counts = Counter(tokenizer(text, truncation=True, max_length=max_length, add_special_tokens=False)["input_ids"])
        rows.append(
            {t: (math.log1p(c) * idf[t] if idf else float(c)) for t, c in counts.items() if not idf or t in idf}
        )
    return rows


def corpus_vectors():
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    corpus, queries = {}, []
    for retrieval in (miracl(), autorag(), allganize(), medical()):
        corpus |= {f"{retrieval.name}:{doc_id}": text for doc_id, text in retrieval.corpus.items()}
        queries += list(retrieval.queries.values())
    counts = weighted(list(corpus.values()), tokenizer, None)
    frequency = Counter(t for row in counts for t in row)
    idf = {t: math.log(len(counts) / df) + 1.0 for t, df in frequency.items()}
    documents = dict(zip(corpus, weighted(list(corpus.values()), tokenizer, idf), strict=True))
    query_rows = [{t: idf[t] for t in row} for row in weighted(queries, tokenizer, idf) if row]
    return corpus, documents, query_rows, len(frequency), sum(t >= SLOTS for t in frequency)


def create(client: OpenSearch, name: str, split: bool, parameters: SeismicParameters) -> None:
    client.indices.delete(index=name, ignore_unavailable=True)
    body = index_body(None, MorphemeField(False), None, 1, seismic=parameters)
    if split:
        body["mappings"]["properties"][HIGH] = parameters.mapping()
    client.indices.create(index=name, body=body)


def load(client: OpenSearch, name: str, documents: dict[str, dict[int, float]], slots: TokenSlots | None) -> None:
    def actions():
        for doc_id, vector in documents.items():
            if slots is not None:
                yield {"_index": name, "_id": doc_id, EMBEDDING: slots.document(vector)[0]}
            else:
                low = {str(t): w for t, w in vector.items() if t < SLOTS}
                high = {str(t - SLOTS): w for t, w in vector.items() if t >= SLOTS}
                fields = {field: value for field, value in ((EMBEDDING, low), (HIGH, high)) if value}
                yield {"_index": name, "_id": doc_id, **fields}  # an empty sparse_vector fails the node

    helpers.bulk(client, actions(), chunk_size=500, request_timeout=300)
    client.indices.forcemerge(index=name, max_num_segments=1, request_timeout=600)
    client.indices.refresh(index=name)
    client.transport.perform_request("POST", f"/_plugins/_neural/warmup/{name}")


def clause(field: str, tokens: dict[str, float], setting: dict) -> dict:
    return {"neural_sparse": {field: {"query_tokens": tokens, "method_parameters": setting}}}


def query_body(query: dict[int, float], slots: TokenSlots | None, setting: dict) -> dict | None:
    if slots is not None:
        tokens = slots.query(query)
        return {"size": 10, "_source": False, "query": clause(EMBEDDING, tokens, setting)} if tokens else None
    low = {str(t): w for t, w in query.items() if t < SLOTS}
    high = {str(t - SLOTS): w for t, w in query.items() if t >= SLOTS}
    should = [clause(f, tokens, setting) for f, tokens in ((EMBEDDING, low), (HIGH, high)) if tokens]
    return {"size": 10, "_source": False, "query": {"bool": {"should": should}}}


def exact_top(query: dict[int, float], documents: dict[str, dict[int, float]]) -> list[str]:
    scores = {d: sum(w * v.get(t, 0.0) for t, w in query.items()) for d, v in documents.items()}
    return [d for d, s in sorted(scores.items(), key=lambda item: -item[1])[:10] if s > 0]


def measure(client, name, queries, documents, tops, slots, setting, repeat: int, ceilings) -> dict:
    found, wrong, hits_seen, took = 0, 0, 0, []
    wanted = sum(len(top) for top in tops)
    for query, top in zip(queries, tops, strict=True):
        body = query_body(query, slots, setting)
        if body is None:
            continue
        for _ in range(repeat):
            response = client.search(index=name, body=body)
            took.append(response["took"])
        hits = response["hits"]["hits"]
        found += len({hit["_id"] for hit in hits} & set(top))
        for hit in hits:
            expected = quantized_score(query, documents[hit["_id"]], ceilings)
            hits_seen += 1
            wrong += abs(hit["_score"] - expected) > 1e-4 * max(expected, 1.0)
    return {
        "recall_at_10": round(found / wanted, 4),
        "wrong_score_share": round(wrong / hits_seen, 4) if hits_seen else None,
        "took_ms_median": statistics.median(took),
        "took_ms_range": [min(took), max(took)],
    }


def model_ids(passages: list[str]) -> int:
    """Distinct ids a random tiny model activates on ``passages`` (imports torch)."""
    import tempfile

    from ko_sparse.model.encode import encode_sparse
    from ko_sparse.model.splade import load_encoder
    from ko_sparse.model.tiny import TinyModelSpec, build_tiny_mlm

    with tempfile.TemporaryDirectory() as folder:
        encoder = load_encoder(build_tiny_mlm(TinyModelSpec(32, 1, identity_steps=0), folder), max_length=128)
        vectors = encode_sparse(encoder, passages, 32, 128)
    return len(set(vectors.indices.tolist()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="http://127.0.0.1:9200")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model-ids", action="store_true")
    args = parser.parse_args(argv)
    client = connect(args.host)
    corpus, documents, queries, distinct, high = corpus_vectors()
    tops = [exact_top(query, documents) for query in queries]
    peak = max(max(vector.values()) for vector in documents.values())
    parameters = SeismicParameters(approximate_threshold=1, quantization_ceiling_ingest=float(math.ceil(peak)))
    report = {"documents": len(documents), "queries": len(queries), "distinct_ids": distinct, "ids_above_32767": high}
    report["ceilings"] = parameters.ceilings
    slots = TokenSlots()
    for vector in documents.values():
        slots.assign(vector)
    for scheme, scheme_slots in (("remap", slots), ("split", None)):
        name = f"ko-sparse-bench-seismic-{scheme}"
        create(client, name, scheme_slots is None, parameters)
        try:
            load(client, name, documents, scheme_slots)
            report[scheme] = [
                {"method_parameters": setting}
                | measure(
                    client, name, queries, documents, tops, scheme_slots, setting, args.repeat, parameters.ceilings
                )
                for setting in SETTINGS
            ]
        finally:
            client.indices.delete(index=name, ignore_unavailable=True)
    if args.model_ids:
        report["tiny_random_model_distinct_ids"] = model_ids(list(corpus.values()))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
