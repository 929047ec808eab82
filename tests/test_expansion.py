"""``expand``: the library's ``SparseEncoder.decode`` of each text's vector, with the text's own tokens marked."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.model.expansion import expand
from ko_sparse.model.splade import mlm_of
from tests.conftest import KOREAN_SENTENCES


@pytest.mark.parametrize("top_k", [1, 7, 50_000])
def test_expansions_are_the_decoded_top_tokens(tiny_encoder, top_k):
    texts = KOREAN_SENTENCES[:3]
    decoded = tiny_encoder.decode(tiny_encoder.encode(texts, convert_to_sparse_tensor=True), top_k=top_k)
    expansions = expand(tiny_encoder, texts, top_k)
    for text, tokens, expected in zip(texts, expansions, decoded, strict=True):
        assert [t.token for t in tokens] == [token for token, _ in expected]
        assert [t.weight for t in tokens] == pytest.approx([weight for _, weight in expected], abs=1e-5)
        own = set(tiny_encoder.tokenizer.tokenize(text))
        assert [t.in_text for t in tokens] == [t.token in own for t in tokens]


def test_tokens_of_the_text_itself_are_marked(tiny_encoder):
    tokenizer = tiny_encoder.tokenizer
    own = tokenizer.tokenize("당뇨병 치료")
    with torch.no_grad():  # every text now weights these tokens most
        mlm_of(tiny_encoder).get_output_embeddings().bias[tokenizer.convert_tokens_to_ids(own)] += 100.0
    first, second = expand(tiny_encoder, ["당뇨병 치료", "고혈압"], top_k=len(own) + 1)
    assert {t.token for t in first if t.in_text} == {t.token for t in first[: len(own)]} == set(own)
    assert not first[-1].in_text and [t.in_text for t in second] == [
        t.token in tokenizer.tokenize("고혈압") for t in second
    ]
    assert {t.token for t in second[: len(own)]} == set(own) and not any(t.in_text for t in second[: len(own)])


def test_the_command_prints_the_expansions(tiny_encoder, tmp_path):
    tiny_encoder.save(str(tmp_path / "model"))
    result = CliRunner().invoke(cli, ["expand", *KOREAN_SENTENCES[:2], "--model", str(tmp_path / "model"), "--json"])
    assert result.exit_code == 0, result.output
    expected = expand(tiny_encoder, KOREAN_SENTENCES[:2], top_k=20)
    assert [
        [(t["token"], t["weight"], t["in_text"]) for t in item["tokens"]] for item in json.loads(result.output)
    ] == [[(t.token, round(t.weight, 4), t.in_text) for t in tokens] for tokens in expected]
