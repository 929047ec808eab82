"""Training on SparseEncoderTrainer with a tiny model: outputs, history, checkpoints, resume and Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from ko_sparse.errors import DataError
from ko_sparse.paths import folder_entries
from ko_sparse.train.config import ConfigError, load_config
from ko_sparse.train.history import TrainingHistory
from ko_sparse.train.trainer import Training, TrainingInterrupted, clear_earlier_run


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
    result = Training(tiny_config(tmp_path)).train()
    assert result.global_step == 6
    for name in ("best", "final"):
        assert (tmp_path / name / "modules.json").is_file()
        assert (tmp_path / name / "model.safetensors").is_file()
        assert (tmp_path / name / "eval_results.json").is_file()
    assert (tmp_path / "training_curves.png").stat().st_size > 10_000
    assert load_config(tmp_path / "config.yaml").training.max_steps == 6
    history = TrainingHistory.load(tmp_path / "training_history.json")
    assert [r["step"] for r in history.train] == [2, 4, 6]
    assert {"loss", "self", "synonym", "margin", "query_regularizer_loss", "learning_rate"} <= set(history.train[0])
    assert 0.1 < history.train[-1]["peak_memory_gb"] < 64  # what the run needed, as the process saw it
    components = ("self", "synonym", "margin", "query_regularizer_loss")
    assert history.train[0]["loss"] == pytest.approx(sum(history.train[0][k] for k in components), abs=1e-3)
    assert [r["step"] for r in history.eval] == [0, 3, 6]
    assert {"recall@5", "recall@10", "recall@20", "mrr", "ndcg@10", "validation_loss"} <= set(history.eval[0])
    assert result.best_metric == "mrr" and result.best_value == max(r["mrr"] for r in history.eval)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]


class CtrlCAtStep(TrainerCallback):
    """Sends this process SIGINT, as a Ctrl-C in the terminal would, at the end of ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_saves_a_checkpoint_and_resume_gives_the_same_weights(tmp_path):
    straight = tmp_path / "straight"
    Training(tiny_config(straight, "training.save_steps=100")).train()

    resumed = tmp_path / "resumed"
    handler = signal.getsignal(signal.SIGINT)  # Python's, or SIG_IGN in a shell's background job
    with pytest.raises(TrainingInterrupted, match="--resume") as interrupted:
        Training(tiny_config(resumed, "training.save_steps=100"), callbacks=[CtrlCAtStep(3)]).train()
    assert "at step 3" in str(interrupted.value)
    assert (resumed / "checkpoints" / "checkpoint-3").is_dir()
    assert not (resumed / "final").exists()
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C is handled as before the run again

    result = Training(tiny_config(resumed, "training.save_steps=100")).train(resume=True)
    assert result.global_step == 6
    expected = load_file(straight / "final" / "model.safetensors")
    actual = load_file(resumed / "final" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6)
    steps = [r["step"] for r in TrainingHistory.load(resumed / "training_history.json").eval]
    assert steps == [0, 3, 6]


class FailAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise RuntimeError("step 2 failed")


def test_ctrl_c_is_handled_as_before_when_training_raises(tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError, match="step 2 failed"):
        Training(tiny_config(tmp_path), callbacks=[FailAtStep()]).train()
    assert signal.getsignal(signal.SIGINT) is handler


def test_an_earlier_run_is_kept_unless_resumed_or_overwritten(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "model.safetensors").write_bytes(b"the earlier run's best model")
    (tmp_path / "config.yaml").write_text("earlier: true\n")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"is not empty \(best, config.yaml, notes.txt\)"):
        Training(tiny_config(tmp_path)).train()
    assert (tmp_path / "best" / "model.safetensors").read_bytes() == b"the earlier run's best model"
    clear_earlier_run(tmp_path, resume=True, overwrite=False)
    assert folder_entries(tmp_path) == ["best", "config.yaml", "notes.txt"]
    clear_earlier_run(tmp_path, resume=False, overwrite=True)
    assert folder_entries(tmp_path) == ["notes.txt"]


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="--resume: no checkpoint"):
        Training(tiny_config(tmp_path)).train(resume=True)


def test_missing_training_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"data\.train="):
        Training(tiny_config(tmp_path, f"data.train={tmp_path / 'none.txt'}"))


def test_trainer_arguments_pass_through_and_unknown_ones_are_refused(tmp_path):
    from ko_sparse.train.arguments import training_arguments

    config = tiny_config(tmp_path, "training.trainer_args={dataloader_num_workers: 0, logging_first_step: true}")
    args = training_arguments(config, ["anchor", "positive", "negative"], doc_only=False, resume=False)
    assert args.logging_first_step and args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 2
    config = tiny_config(tmp_path, "training.trainer_args={no_such_field: 1}")
    with pytest.raises(ConfigError, match="no_such_field"):
        training_arguments(config, ["anchor", "positive", "negative"], doc_only=False, resume=False)


def test_gradient_checkpointing_reaches_the_arguments_under_either_transformers_name(tmp_path):
    from ko_sparse.train.arguments import checkpointing_keyword, training_arguments

    assert checkpointing_keyword({"gradient_checkpointing"}) == "gradient_checkpointing"
    assert checkpointing_keyword({"gradient_checkpointing", "activation_checkpointing"}) == "activation_checkpointing"
    for setting in (True, False):
        config = tiny_config(tmp_path, f"training.gradient_checkpointing={str(setting).lower()}")
        args = training_arguments(config, ["anchor", "positive", "negative"], doc_only=False, resume=False)
        assert getattr(args, checkpointing_keyword()) is setting


def test_concurrent_builds_of_a_cached_model_leave_one_complete_copy(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from ko_sparse.paths import build_once

    def slow_build(folder):
        folder.mkdir()
        (folder / "part").write_text("half")
        (folder / "done").write_text("whole")

    with ThreadPoolExecutor(4) as pool:
        targets = list(pool.map(lambda _: build_once(tmp_path / "model", slow_build, "done"), range(4)))
    assert set(targets) == {tmp_path / "model"} and (tmp_path / "model" / "done").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary build left behind


def test_a_failed_build_leaves_nothing_and_an_unfinished_one_is_rebuilt(tmp_path):
    from ko_sparse.paths import build_once

    def failing_build(folder):
        folder.mkdir()
        (folder / "weights").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        build_once(tmp_path / "model", failing_build, "done")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="wrote no done"):
        build_once(tmp_path / "model", lambda folder: folder.mkdir(), "done")
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights").write_bytes(b"cut short")  # an earlier build without its marker
    built = build_once(tmp_path / "model", lambda folder: folder.mkdir() or (folder / "done").write_text("ok"), "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in built.iterdir()) == ["done"]


@pytest.mark.slow
def test_data_parallel_run_with_accelerate_launch(tmp_path):
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
        "-m", "ko_sparse", "train", "--preset", "tiny", "--max-steps", "4", "--output-dir", str(tmp_path),
        "--set", "model.base_model=tiny:32x1", "--set", "training.batch_size=4", "--set", "eval.every_steps=4",
        "--set", "eval.num_distractors=20", "--set", "eval.max_anchors=10", "--set", "training.log_steps=2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done: 4 steps" in done.stdout
    history = TrainingHistory.load(tmp_path / "training_history.json")
    assert [r["step"] for r in history.train] == [2, 4] and [r["step"] for r in history.eval] == [0, 4]
    assert (tmp_path / "final" / "model.safetensors").is_file()


def test_every_curve_is_labelled_and_a_negative_total_is_explained():
    train = [
        {"step": s, "loss": 2 - s, "self": -s, "synonym": -1.0, "margin": 1.0, "document_regularizer_loss": 0.5}
        for s in (1, 2, 3)
    ]
    evaluations = [
        {"step": s, "mrr": 0.1 * s, "recall@10": 0.2 * s, "ndcg@10": 0.1, "validation_loss": 1.0} for s in (0, 3)
    ]
    figure = TrainingHistory(train, evaluations, "mrr").figure()
    for axis in figure.axes:
        labels = [line.get_label() for line in axis.get_lines()]
        assert labels and not [label for label in labels if label.startswith("_")], axis.get_title()
        assert [text.get_text() for text in axis.get_legend().get_texts()] == labels
    total = figure.axes[0]
    assert any("below it, the self and synonym rewards" in text.get_text() for text in total.get_legend().get_texts())
    assert "best model: 0.300 (step 3)" in [line.get_label() for line in figure.axes[3].get_lines()]


def test_the_first_run_shows_its_progress_and_no_library_noise(tmp_path):
    """As a user sees it, in a fresh cache: a bar while the tiny base model is prepared, one line per
    evaluation, no per-log dicts, no "Saving the dataset" bars, no "Removed shared tensor" warnings."""
    settings = [
        "model.base_model=tiny:16x1",
        "model.max_length=16",
        "training.batch_size=4",
        "training.max_steps=4",
        "training.log_steps=2",
        "training.save_steps=2",
        "eval.every_steps=2",
        "eval.num_distractors=20",
        "eval.max_anchors=10",
    ]
    command = [sys.executable, "-m", "ko_sparse", "train", "--preset", "tiny", "--output-dir", str(tmp_path / "run")]
    run = subprocess.run(
        [*command, *(argument for setting in settings for argument in ("--set", setting))],
        env={**os.environ, "KO_SPARSE_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Preparing the tiny base model (once, then cached)" in output and "150/150" in output
    assert re.search(r"step 2: synonyms_mrr \d\.\d{4}", output) and "Done: 4 steps" in output
    for noise in ("Removed shared tensor", "Saving the dataset", "{'loss'", "'eval_loss'", "warmup_ratio"):
        assert noise not in output, noise
    history = TrainingHistory.load(tmp_path / "run" / "training_history.json")  # what the dicts said is kept
    assert [r["step"] for r in history.train] == [2, 4] and "grad_norm" in history.train[0]


def test_a_frozen_vocabulary_keeps_every_ids_rows_and_trains_the_layers(tmp_path):
    from ko_sparse.model.splade import mlm_of

    training = Training(tiny_config(tmp_path, "model.freeze_vocabulary=true"))
    mlm = mlm_of(training.model)
    before = {name: p.detach().clone() for name, p in mlm.named_parameters()}
    training.train()
    after = dict(mlm.named_parameters())
    frozen = {"model.embeddings.tok_embeddings.weight", "decoder.bias"}  # the decoder's weight is tied
    assert all(torch.equal(before[name], after[name]) for name in frozen)
    assert not any(after[name].requires_grad for name in frozen)
    changed = [name for name in before if name not in frozen and not torch.equal(before[name], after[name])]
    assert "head.dense.weight" in changed and any(name.startswith("model.layers.") for name in changed)


@pytest.mark.slow  # compiling on a CPU takes minutes
def test_compiled_blocks_train_like_eager_blocks_and_save_plain_models(tmp_path, capsys):
    losses, saved = {}, {}
    for compiled in (False, True):
        output = tmp_path / f"compile-{compiled}"
        settings = ("training.max_steps=2", "training.log_steps=1", "eval.every_steps=100", "training.save_steps=100")
        Training(tiny_config(output, *settings, f"training.compile={compiled}")).train()
        losses[compiled] = [r["loss"] for r in TrainingHistory.load(output / "training_history.json").train]
        saved[compiled] = load_file(output / "final" / "model.safetensors").keys()
    assert len(losses[True]) == 2
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)  # the same steps, compiled or not
    assert saved[True] == saved[False]  # no torch.compile wrapper names in the saved model
    assert "batch: 4 rows per device x 2 accumulation x 1 process = 8 rows per optimizer step; 2 steps" in (
        capsys.readouterr().out
    )


def test_compile_compiles_each_repeated_block_once(tiny_mlm_dir):
    from ko_sparse.model.compiled import compile_encoder, repeated_blocks
    from ko_sparse.model.splade import load_encoder, masked_lms

    encoder = load_encoder(tiny_mlm_dir)
    (mlm,) = masked_lms(encoder)
    blocks = repeated_blocks(mlm)
    assert blocks == list(mlm.model.layers)  # the layers, not the embeddings or the head
    assert compile_encoder(encoder) == len(blocks)
    compiled = [block._compiled_call_impl for block in blocks]
    assert all(c is not None for c in compiled)
    compile_encoder(encoder)
    assert [block._compiled_call_impl for block in blocks] == compiled  # idempotent


def test_settings_named_as_the_library_fields_reach_it_unchanged(tmp_path):
    from ko_sparse.train.arguments import training_arguments

    settings = {"seed": 7, "save_total_limit": 5, "max_grad_norm": 0.5, "weight_decay": 0.2, "save_steps": 11}
    config = tiny_config(tmp_path, *(f"training.{name}={value}" for name, value in settings.items()))
    args = training_arguments(config, ["anchor", "positive", "negative"], doc_only=False, resume=False)
    assert {name: getattr(args, name) for name in settings} == settings
    assert (args.learning_rate, args.gradient_accumulation_steps, args.max_steps) == (1e-3, 2, 6)
