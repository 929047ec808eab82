"""The trainer on a tiny model: outputs, history, checkpoints, resume and Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ko_sparse.errors import DataError
from ko_sparse.train.config import load_config
from ko_sparse.train.history import TrainingHistory
from ko_sparse.train.trainer import SpladeTrainer, TrainingInterrupted


def tiny_config(output_dir: Path, *extra: str):
    return load_config(
        None,
        [
            "model.base_model=tiny:32x1",
            "model.max_length=16",
            "data.train=builtin:parakqc",
            "training.batch_size=4",
            "training.gradient_accumulation_steps=2",
            "training.max_steps=6",
            "training.learning_rate=1e-3",
            "training.log_steps=2",
            "training.save_steps=3",
            "eval.every_steps=3",
            "eval.num_distractors=50",
            "eval.max_anchors=20",
            f"output_dir={output_dir}",
            *extra,
        ],
    )


def test_short_run_writes_models_history_curves_and_checkpoints(tmp_path):
    result = SpladeTrainer(tiny_config(tmp_path)).train()
    assert result.global_step == 6
    for name in ("best", "final"):
        assert (tmp_path / name / "modules.json").is_file()
        assert (tmp_path / name / "model.safetensors").is_file()
    assert (tmp_path / "training_curves.png").stat().st_size > 10_000
    assert load_config(tmp_path / "config.yaml").training.max_steps == 6
    history = TrainingHistory.load(tmp_path / "training_history.json")
    assert [r["step"] for r in history.train] == [2, 4, 6]
    assert {"total", "self", "synonym", "margin", "flops", "lr"} <= set(history.train[0])
    assert [r["step"] for r in history.eval] == [0, 3, 6]
    assert {"recall@5", "recall@10", "recall@20", "mrr", "ndcg@10", "validation_loss"} <= set(history.eval[0])
    assert result.best_mrr == max(r["mrr"] for r in history.eval)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-3", "step-6"]


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    SpladeTrainer(tiny_config(straight, "training.save_steps=100")).train()

    resumed = tmp_path / "resumed"
    original_after_step = SpladeTrainer._after_step

    def interrupt_at_step_3(self, window, progress):
        original_after_step(self, window, progress)
        if self.state.global_step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(SpladeTrainer, "_after_step", interrupt_at_step_3)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        SpladeTrainer(tiny_config(resumed, "training.save_steps=100")).train()
    assert (resumed / "checkpoints" / "step-3").is_dir()
    monkeypatch.setattr(SpladeTrainer, "_after_step", original_after_step)

    result = SpladeTrainer(tiny_config(resumed, "training.save_steps=100")).train(resume=True)
    assert result.global_step == 6
    expected = load_file(straight / "final" / "model.safetensors")
    actual = load_file(resumed / "final" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6)
    steps = [r["step"] for r in TrainingHistory.load(resumed / "training_history.json").eval]
    assert steps == [0, 3, 6]


def test_missing_training_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"data\.train="):
        SpladeTrainer(tiny_config(tmp_path, f"data.train={tmp_path / 'none.txt'}"))
