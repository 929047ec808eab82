"""End to end: the offline ``tiny`` preset learns (loss falls, validation MRR rises)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sentence_transformers import SparseEncoder

from ko_sparse.cli.main import cli
from ko_sparse.model.lengths import LENGTHS_FILE
from ko_sparse.train.history import TrainingHistory


@pytest.mark.slow
def test_tiny_preset_learns(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--preset", "tiny", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    history = TrainingHistory.load(tmp_path / "training_history.json")
    totals = [record["loss"] for record in history.train]
    assert len(totals) == 20
    assert sum(totals[-3:]) / 3 < sum(totals[:3]) / 3 - 1.0
    mrr = [record["mrr"] for record in history.eval]
    assert [record["step"] for record in history.eval] == [0, 50, 100, 150, 200]
    assert max(mrr[1:]) > mrr[0] + 0.1
    assert history.eval[-1]["recall@10"] > history.eval[0]["recall@10"]

    best = SparseEncoder(str(tmp_path / "best"), device="cpu")
    vector = best.encode("당뇨병 치료", convert_to_tensor=True).to_dense()
    assert (vector > 0).sum() > 0
    expand = CliRunner().invoke(
        cli, ["expand", "당뇨병 치료", "--model", str(tmp_path / "best"), "--top-k", "10", "--json"]
    )
    assert expand.exit_code == 0, expand.output
    top = [token["token"] for token in json.loads(expand.output)[0]["tokens"]]
    assert {"당뇨병", "치료"} <= set(top[:10]), top  # the demo's query keeps its own words
    lengths = json.loads((tmp_path / "best" / LENGTHS_FILE).read_text())
    assert lengths == {"document": 256, "query": 32}  # the preset's document_length; queries as trained
    assert medical_ndcg(tmp_path / "best", tmp_path / "bench") >= 0.8


@pytest.mark.slow
def test_tiny_doc_only_preset_ranks_the_medical_set(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--preset", "tiny", "--mode", "doc-only", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert medical_ndcg(tmp_path / "best", tmp_path / "bench") >= 0.8


def medical_ndcg(model: Path, output: Path) -> float:
    """The model's nDCG@10 on the bundled ``medical`` set, as ``make demo`` shows it."""
    bench = CliRunner().invoke(cli, ["bench", "--index", "medical", "--model", str(model), "--output", str(output)])
    assert bench.exit_code == 0, bench.output
    systems = json.loads((output / "results.json").read_text())["systems"]
    return next(s["metrics"]["ndcg@10"] for s in systems if s["name"].startswith("sparse"))
