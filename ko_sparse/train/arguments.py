"""A :class:`TrainConfig` as ``SparseEncoderTrainingArguments``: the one place the two vocabularies meet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sparse_encoder import SparseEncoderTrainingArguments

from ko_sparse.train.config import ConfigError, TrainConfig, TrainingConfig

CHECKPOINTS = "checkpoints"
IDF_PARAMETER = r"sub_modules\.query\.0\.weight$"  # the doc-only Router's SparseStaticEmbedding
FIELDS = set(SparseEncoderTrainingArguments.__dataclass_fields__)
# training settings named as the library's fields, but given below in its terms: null steps, a warmup
# ratio as warmup_steps (transformers 5), checkpointing under the name the installed version has
TRANSLATED = {"max_steps", "warmup_ratio", "gradient_checkpointing"}
SAME_NAMES = sorted({setting.name for setting in dataclasses.fields(TrainingConfig)} & FIELDS - TRANSLATED)
LOADER_WORKERS = 2  # on CUDA, batches are tokenised in worker processes while the GPU runs the step


def checkpointing_keyword(fields: set[str] = FIELDS) -> str:
    """Newer transformers renamed ``gradient_checkpointing`` to ``activation_checkpointing``: the one it has."""
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def resolve_mixed_precision(setting: str) -> str:
    """``auto``: bf16 on CUDA devices that support it, fp16 on other CUDA devices, fp32 on CPU."""
    if setting != "auto":
        if setting not in ("no", "fp16", "bf16"):
            raise ConfigError(f"training.mixed_precision={setting!r}: expected auto, no, fp16 or bf16")
        return setting
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def training_arguments(
    config: TrainConfig, columns: list[str], doc_only: bool, resume: bool
) -> SparseEncoderTrainingArguments:
    """Checkpoints go to ``<output_dir>/checkpoints``; the first column is the query side (a doc-only
    model's IDF route), the others documents."""
    training = config.training
    precision = resolve_mixed_precision(training.mixed_precision)
    every = config.eval.every_steps
    values = {name: getattr(training, name) for name in SAME_NAMES} | dict(
        output_dir=str(Path(config.output_dir) / CHECKPOINTS),
        per_device_train_batch_size=training.batch_size,
        per_device_eval_batch_size=training.batch_size,
        num_train_epochs=training.epochs,
        max_steps=training.max_steps or -1,
        warmup_steps=training.warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
        lr_scheduler_type=training.scheduler,
        data_seed=training.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_pin_memory=torch.cuda.is_available(),
        dataloader_num_workers=LOADER_WORKERS if torch.cuda.is_available() else 0,
        save_strategy="steps",
        logging_steps=training.log_steps,
        eval_strategy="steps" if every else "epoch",
        eval_steps=every,
        eval_on_start=not resume,  # a resumed run already evaluated its start
        report_to="none",
        disable_tqdm=False,  # the library's default hides the bar when transformers logs only errors (our CLI)
        batch_sampler=BatchSamplers.NO_DUPLICATES if config.loss.recipe == "retrieval" else BatchSamplers.BATCH_SAMPLER,
    )
    values[checkpointing_keyword()] = training.gradient_checkpointing
    if doc_only:
        values["router_mapping"] = {column: "query" if i == 0 else "document" for i, column in enumerate(columns)}
        if config.model.idf_trainable:
            values["learning_rate_mapping"] = {IDF_PARAMETER: training.idf_learning_rate}
    unknown = sorted(set(training.trainer_args) - FIELDS)
    if unknown:
        raise ConfigError(f"training.trainer_args: {unknown} are not SparseEncoderTrainingArguments fields")
    try:
        return SparseEncoderTrainingArguments(**(values | training.trainer_args))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"training settings rejected by SparseEncoderTrainingArguments: {error}") from error
