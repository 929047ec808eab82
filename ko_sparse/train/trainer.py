"""``ko-sparse train`` on sentence-transformers' ``SparseEncoderTrainer``.

The library runs the loop, data-parallel (``accelerate launch`` / ``torchrun``), mixed precision,
checkpoints and resume, logging integrations and the model card. ko-sparse adds what it lacks: the
notebook's loss (:mod:`ko_sparse.losses.notebook`), the fused max-pooled decoder while training
(:func:`ko_sparse.model.max_pooled_decoder.fused_max_pooling`), the synonym-ranking evaluator, Korean
data, ``best/`` and ``final/`` models, the history as JSON and curves, and Ctrl-C as a checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from sentence_transformers import SparseEncoder
from sentence_transformers.base.evaluation import BaseEvaluator
from sentence_transformers.sparse_encoder import SparseEncoderTrainer
from transformers import ProgressCallback, TrainerCallback

from ko_sparse.data.paraphrase_triplets import BUILTIN_PREFIX, resolve_builtin
from ko_sparse.data.retrieval import load_eval_retrieval
from ko_sparse.data.triplets import load_eval_pairs, load_triplets
from ko_sparse.errors import Interrupted
from ko_sparse.evaluation.retrieval import retrieval_evaluator
from ko_sparse.evaluation.synonym_ranking import SynonymRankingEvaluator
from ko_sparse.losses import NotebookSpladeLoss, retrieval_loss
from ko_sparse.model.base_models import resolve_base_model
from ko_sparse.model.compiled import compile_encoder, compile_supported
from ko_sparse.model.doc_only import doc_only_model, save_model
from ko_sparse.model.idf import idf_vector
from ko_sparse.model.lengths import Lengths
from ko_sparse.model.max_pooled_decoder import fused_max_pooling
from ko_sparse.model.splade import freeze_vocabulary, load_encoder, special_token_ids
from ko_sparse.paths import cache_dir, folder_entries, not_empty
from ko_sparse.train.arguments import CHECKPOINTS, training_arguments
from ko_sparse.train.callbacks import (
    CURVES_FILE,
    HISTORY_FILE,
    BatchArithmetic,
    BestModelSaver,
    FlopsWarmup,
    GracefulInterrupt,
    HistoryWriter,
    PeakMemory,
    TrainingProgress,
)
from ko_sparse.train.config import ConfigError, TrainConfig
from ko_sparse.train.history import TrainingHistory

VALIDATION_LOSS_BATCHES = 20  # the validation loss is a check, not a metric: a few batches are enough
NOT_TEXT = ("difficulty",)  # columns of the triplet data that are not model inputs
TEACHER_COLUMN = "teacher_scores"
MARGIN_COLUMN = "teacher_margins"  # teacher(positive) - teacher(negative_i), written beside the scores
CONFIG_FILE = "config.yaml"
RUN_FILES = ("best", "final", CHECKPOINTS, CONFIG_FILE, HISTORY_FILE, CURVES_FILE)  # what a run writes


def clear_earlier_run(folder: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an output folder that holds anything unless resuming into it; with ``overwrite``, remove the
    earlier run's files (:data:`RUN_FILES`) and leave the rest."""
    present = folder_entries(folder)
    if resume or not present:
        return
    if not overwrite:
        choices = (
            "add --resume to continue the run there, or --overwrite to start again (its best/, final/ and "
            "checkpoints/ are replaced; files ko-sparse did not write are left alone)"
        )
        raise ConfigError(not_empty("--output-dir", folder, present, choices))
    for name in set(RUN_FILES) & set(present):
        if (folder / name).is_dir():
            shutil.rmtree(folder / name)
        else:
            (folder / name).unlink()


def model_inputs(split: Dataset, distillation: str) -> Dataset:
    """The columns the trainer feeds: texts, and ``label`` from teacher scores when distilling
    (margin MSE: the stored margins, or positive minus each negative; KL divergence: the scores themselves)."""
    split = split.remove_columns([c for c in NOT_TEXT if c in split.column_names])
    teacher_columns = [c for c in (TEACHER_COLUMN, MARGIN_COLUMN) if c in split.column_names]
    if distillation == "none":
        return split.remove_columns(teacher_columns)
    if TEACHER_COLUMN not in split.column_names:
        raise ConfigError(
            f"loss.distillation={distillation} needs teacher scores: build the data with "
            "ko-sparse data build --retrieval SOURCE --teacher MODEL"
        )

    def label(row: dict) -> dict:
        scores = row[TEACHER_COLUMN]
        if distillation != "margin_mse":
            return {"label": scores}
        return {"label": row.get(MARGIN_COLUMN) or [scores[0] - s for s in scores[1:]]}

    return split.map(label, remove_columns=teacher_columns)


class TrainingInterrupted(Interrupted):
    """Training stopped by Ctrl-C after saving a resumable checkpoint."""


@dataclass
class TrainResult:
    output_dir: Path
    global_step: int
    best_metric: str
    best_value: float
    history: TrainingHistory


class Training:
    """One training run from a :class:`TrainConfig`; see ``ko-sparse train --help``."""

    def __init__(self, config: TrainConfig, callbacks: list[TrainerCallback] = ()) -> None:
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.splits, eval_pairs = self._load_data()
        self.doc_only = config.model.mode == "doc-only"
        self.model = self._build_model()
        self.evaluator = self._evaluator(eval_pairs)
        self.extra_callbacks = list(callbacks)

    # ------------------------------------------------------------------------------------------- setup
    def _load_data(self) -> tuple[dict[str, Dataset], str | None]:
        """The splits as model inputs, and the synonym evaluation pairs' file (built-in data brings its own)."""
        data = self.config.data
        if data.train is None:
            raise ConfigError(
                "data.train is not set: give a DatasetDict directory (ko-sparse data build), a .jsonl file "
                "or builtin:parakqc"
            )
        train, eval_pairs = data.train, data.eval_pairs
        if train.startswith(BUILTIN_PREFIX):
            train_dir, builtin_pairs = resolve_builtin(train, cache_dir() / "data", self.config.training.seed)
            train, eval_pairs = str(train_dir), eval_pairs or str(builtin_pairs)
        splits = load_triplets(train, data.validation, recipe=self.config.loss.recipe)
        splits = {name: model_inputs(split, self.config.loss.distillation) for name, split in splits.items()}
        if not (data.eval_retrieval or eval_pairs or "validation" in splits):
            raise ConfigError(
                "nothing to evaluate on: set data.eval_pairs or data.eval_retrieval, or give a validation split"
            )
        return splits, eval_pairs

    def _build_model(self) -> SparseEncoder:
        model_config = self.config.model
        base_model = resolve_base_model(model_config.base_model, cache_dir() / "models")
        encoder = load_encoder(base_model, model_config.max_length, model_config.attn_implementation)
        if model_config.freeze_vocabulary:
            freeze_vocabulary(encoder)
        if not self.doc_only:
            return encoder
        train = self.splits["train"]
        texts = [c for c in train.column_names[1:] if c != "label"]  # positives and negatives
        documents = sorted({text for column in texts for text in train[column]})
        idf = idf_vector(encoder.tokenizer, documents)  # BM25 IDF over the training documents
        return doc_only_model(encoder, idf, trainable=model_config.idf_trainable)

    def _evaluator(self, eval_pairs: str | None) -> BaseEvaluator:
        """Held-out queries over their corpus (``data.eval_retrieval``), else synonym ranking of the
        evaluation pairs (or of the validation split's first two columns)."""
        settings = self.config.eval
        if self.config.data.eval_retrieval:
            queries, corpus, qrels = load_eval_retrieval(self.config.data.eval_retrieval)
            return retrieval_evaluator(queries, corpus, qrels, settings.batch_size)
        if eval_pairs:
            pairs = load_eval_pairs(eval_pairs)
        else:
            validation = self.splits["validation"]
            pairs = list(
                zip(validation[validation.column_names[0]], validation[validation.column_names[1]], strict=True)
            )
        return SynonymRankingEvaluator(
            pairs,
            self.model.tokenizer,
            k_values=settings.k_values,
            num_distractors=settings.num_distractors,
            max_anchors=settings.max_anchors,
            seed=settings.seed,
            max_length=settings.max_length,
            batch_size=settings.batch_size,
        )

    def _loss(self) -> torch.nn.Module:
        if self.config.loss.recipe == "retrieval":
            return retrieval_loss(self.model, self.config.loss, self.doc_only)
        return NotebookSpladeLoss(self.model, self.config.loss, special_token_ids(self.model.tokenizer), self.doc_only)

    def _trainer(self, resume: bool) -> tuple[SparseEncoderTrainer, GracefulInterrupt, HistoryWriter]:
        train = self.splits["train"]
        args = training_arguments(self.config, train.column_names, self.doc_only, resume)
        loss = self._loss()
        interrupt = GracefulInterrupt()
        history = HistoryWriter(self.output_dir, self._primary_metric)
        best = BestModelSaver(lambda: f"eval_{self._primary_metric()}", self._save, self.output_dir / "best")
        validation = self.splits.get("validation")
        if validation is not None:
            validation = validation.select(
                range(min(len(validation), VALIDATION_LOSS_BATCHES * args.per_device_eval_batch_size))
            )
        trainer = SparseEncoderTrainer(
            model=self.model,
            args=args,
            train_dataset=train,
            eval_dataset=validation,
            loss=loss,
            evaluator=self.evaluator,
            callbacks=[
                *self.extra_callbacks,
                BatchArithmetic(),
                best,
                PeakMemory(),
                history,
                interrupt,
                FlopsWarmup(loss, self.config.loss.flops_warmup_steps),
            ],
        )
        if trainer.pop_callback(ProgressCallback) is not None:  # absent with disable_tqdm
            trainer.add_callback(TrainingProgress(self._primary_metric))
        return trainer, interrupt, history

    def _primary_metric(self) -> str:
        """The evaluator's primary metric with its name in front (``synonyms_mrr``, ``validation_dot_ndcg@10``)."""
        metric, name = self.evaluator.primary_metric, self.evaluator.name
        return metric if metric.startswith(f"{name}_") else f"{name}_{metric}"

    # --------------------------------------------------------------------------------------- running
    def train(self, resume: bool = False, overwrite: bool = False) -> TrainResult:
        """Run to the configured steps/epochs; with ``resume``, continue from the newest checkpoint. The output
        folder must be new or empty otherwise, unless ``overwrite`` (see :func:`clear_earlier_run`)."""
        if int(os.environ.get("RANK", "0")) == 0:  # data-parallel: the first process checks before anyone writes
            clear_earlier_run(self.output_dir, resume, overwrite)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        trainer, interrupt, history = self._trainer(resume)
        if trainer.is_world_process_zero():
            self.config.save(self.output_dir / CONFIG_FILE)
        checkpoints = Path(trainer.args.output_dir)
        if resume and not any(checkpoints.glob("checkpoint-*")):
            raise ConfigError(f"--resume: no checkpoint under {checkpoints}")
        self._compile(trainer.args.device)
        try:
            with fused_max_pooling(self.model):
                trainer.train(resume_from_checkpoint=True if resume else None)
        finally:
            interrupt.restore()
        if interrupt.stopped:
            raise TrainingInterrupted(
                f"interrupted at step {trainer.state.global_step}; checkpoint saved to "
                f"{checkpoints / f'checkpoint-{trainer.state.global_step}'}. "
                "Run the same command with --resume to continue."
            )
        if not any(
            r.get("step") == trainer.state.global_step and any(k.startswith("eval_") for k in r)
            for r in trainer.state.log_history
        ):
            trainer.evaluate()  # the last step is always evaluated (best/ may change)
        final = history.write(trainer.state)
        if trainer.is_world_process_zero():
            self._save(self.model, self.output_dir / "final", final.eval[-1] if final.eval else {})
        best = final.best() or {}
        return TrainResult(
            self.output_dir, trainer.state.global_step, final.primary, best.get(final.primary, float("nan")), final
        )

    def _compile(self, device: torch.device) -> None:
        """``training.compile``: each transformer block through ``torch.compile`` (null: on CUDA devices)."""
        wanted = self.config.training.compile
        if wanted or (wanted is None and compile_supported(device)):
            compile_encoder(self.model)

    def _save(self, model: SparseEncoder, folder: Path, record: dict) -> None:
        save_model(model, folder)
        model_config = self.config.model
        trained = model_config.max_length
        Lengths(model_config.document_length or trained, model_config.query_length or trained).save(folder)
        self.config.save(folder / "ko_sparse_training.yaml")
        (folder / "eval_results.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
