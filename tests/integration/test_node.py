"""The local node has what ko-sparse needs, and ML-Commons serves sparse models like Python does."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from ko_sparse.opensearch.ml_commons import MLCommons, ModelArtifact
from ko_sparse.opensearch.rank_features import stored_value
from tests.conftest import KOREAN_SENTENCES
from tests.integration import tiny_torchscript

DOCUMENTS = [
    "당뇨병 환자는 혈당 관리를 위해 식단을 조절해야 한다.",
    "고혈압 약은 매일 같은 시간에 복용하는 것이 좋다.",
    "감기에 걸리면 충분히 쉬고 물을 많이 마셔야 한다.",
    "서울에서 부산까지 고속철도로 약 두 시간 반이 걸린다.",
    "인슐린 주사는 제1형 당뇨병 치료의 기본이다.",
    "메일함을 정리하려면 읽지 않은 메일부터 확인하세요.",
    "야구장 개장 시간은 경기 시작 두 시간 전이다.",
    "혈압을 낮추려면 짠 음식을 줄이는 것이 도움이 된다.",
]


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_torchscript.build(seed=3)


@pytest.fixture(scope="module")
def deployed_encoder(ml: MLCommons, tiny_model):
    _, _, archive = tiny_model
    model_id = ml.register(ModelArtifact(archive, "ko-sparse-test-tiny-encoder", "SPARSE_ENCODING"))
    ml.deploy(model_id)
    yield model_id
    ml.remove(model_id)


def test_plugins_are_installed(opensearch):
    components = {row["component"] for row in opensearch.cat.plugins(format="json")}
    assert {
        "opensearch-ml",
        "opensearch-neural-search",
        "opensearch-knn",
        "opensearch-job-scheduler",
    } <= components
    mappings = opensearch.indices.create(
        index="ko-sparse-test-mapper-extras",
        body={"mappings": {"properties": {"v": {"type": "rank_features"}}}},
    )
    assert mappings["acknowledged"]
    opensearch.indices.delete(index="ko-sparse-test-mapper-extras")


def test_sparse_encoding_model_predicts_what_python_computes(ml, deployed_encoder, tiny_model):
    module, tokenizer, _ = tiny_model
    expected = tiny_torchscript.encode(module, tokenizer, KOREAN_SENTENCES)
    actual = ml.predict(deployed_encoder, KOREAN_SENTENCES)
    for want, got in zip(expected, actual, strict=True):
        assert got.keys() == want.keys()
        assert any("\uac00" <= ch <= "\ud7a3" for token in got for ch in token)
        np.testing.assert_allclose([got[t] for t in want], [want[t] for t in want], rtol=1e-5)


def test_ingest_pipeline_and_neural_sparse_rank_like_the_python_dot_product(
    opensearch, ml, deployed_encoder, tiny_model
):
    module, tokenizer, _ = tiny_model
    index, pipeline = "ko-sparse-test-ingest", "ko-sparse-test-pipeline"
    opensearch.ingest.put_pipeline(
        id=pipeline,
        body={"processors": [{"sparse_encoding": {"model_id": deployed_encoder, "field_map": {"text": "embedding"}}}]},
    )
    opensearch.indices.create(
        index=index,
        body={
            "settings": {"default_pipeline": pipeline},
            "mappings": {"properties": {"text": {"type": "text"}, "embedding": {"type": "rank_features"}}},
        },
    )
    try:
        for number, text in enumerate(DOCUMENTS):
            opensearch.index(index=index, body={"text": text}, id=str(number), refresh=number == len(DOCUMENTS) - 1)
        query = "당뇨병 혈당 치료"
        hits = opensearch.search(
            index=index,
            body={
                "size": len(DOCUMENTS),
                "query": {"neural_sparse": {"embedding": {"query_text": query, "model_id": deployed_encoder}}},
            },
        )["hits"]["hits"]

        query_vector = tiny_torchscript.encode(module, tokenizer, [query])[0]
        document_vectors = tiny_torchscript.encode(module, tokenizer, DOCUMENTS)
        python_scores = {
            str(n): sum(w * float(stored_value(np.float32(vector[t]))) for t, w in query_vector.items() if t in vector)
            for n, vector in enumerate(document_vectors)
        }
        assert len(hits) == len(DOCUMENTS)
        for hit in hits:
            assert hit["_score"] == pytest.approx(python_scores[hit["_id"]], rel=1e-4)
        assert [h["_id"] for h in hits] == sorted(python_scores, key=lambda d: (-python_scores[d], int(d)))
    finally:
        opensearch.indices.delete(index=index)
        opensearch.ingest.delete_pipeline(id=pipeline)


def test_sparse_tokenize_model_serves_neural_sparse_queries(opensearch, ml, tiny_model):
    _, _, encoder_zip = tiny_model
    idf = {"당뇨병": 3.5, "치료": 2.0, "혈압": 1.5}
    with zipfile.ZipFile(io.BytesIO(encoder_zip)) as source:
        tokenizer_json = source.read("tokenizer.json")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("tokenizer.json", tokenizer_json)
        zipped.writestr("idf.json", json.dumps(idf, ensure_ascii=False))
    model_id = ml.register(ModelArtifact(archive.getvalue(), "ko-sparse-test-tokenizer", "SPARSE_TOKENIZE"))
    ml.deploy(model_id)
    index = "ko-sparse-test-tokenize"
    try:
        weights = ml.predict(model_id, ["당뇨병 치료에 좋은 음식"])[0]
        assert weights == {"당뇨병": 3.5, "치료": 2.0, "##에": 1.0, "좋": 1.0, "##은": 1.0, "음식": 1.0}
        opensearch.indices.create(
            index=index, body={"mappings": {"properties": {"embedding": {"type": "rank_features"}}}}
        )
        documents = {"a": {"당뇨병": 1.0, "혈압": 2.0}, "b": {"치료": 1.0}, "c": {"감기": 5.0}}
        for doc_id, vector in documents.items():
            opensearch.index(index=index, body={"embedding": vector}, id=doc_id, refresh=True)
        hits = opensearch.search(
            index=index,
            body={"query": {"neural_sparse": {"embedding": {"query_text": "당뇨병 치료", "model_id": model_id}}}},
        )["hits"]["hits"]
        assert [(h["_id"], h["_score"]) for h in hits] == [
            ("a", pytest.approx(3.5)),
            ("b", pytest.approx(2.0)),
        ]
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
        ml.remove(model_id)
