"""End to end: the offline ``tiny`` preset learns (loss falls, validation MRR rises)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sentence_transformers import SparseEncoder

from ko_sparse.cli.main import cli
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
    expand = CliRunner().invoke(cli, ["expand", "당뇨병 치료", "--model", str(tmp_path / "best"), "--json"])
    assert expand.exit_code == 0, expand.output
