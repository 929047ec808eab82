"""The SPLADE training loop: the notebook's recipe on accelerate (DDP, mixed precision, resume).

``accelerate launch`` or ``torchrun`` run the same code data-parallel; on CPU it runs in fp32.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import DatasetDict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from ko_sparse.data.paraphrase_triplets import BUILTIN_PREFIX, resolve_builtin
from ko_sparse.data.triplets import load_eval_pairs, load_triplets
from ko_sparse.evaluation.synonym_ranking import SynonymRankingEvaluator
from ko_sparse.losses import SpladeTripletLoss, TripletBatch
from ko_sparse.model.doc_only import QueryIDF, idf_query_vectors, save_doc_only
from ko_sparse.model.encode import splade_forward
from ko_sparse.model.idf import idf_vector
from ko_sparse.model.splade import load_encoder, mlm_of
from ko_sparse.model.tiny import resolve_base_model
from ko_sparse.paths import cache_dir
from ko_sparse.train.checkpoints import CheckpointManager, TrainerState
from ko_sparse.train.collator import TripletCollator
from ko_sparse.train.config import ConfigError, TrainConfig
from ko_sparse.train.history import TrainingHistory
from ko_sparse.train.sampler import EpochShuffleSampler
from ko_sparse.train.schedules import FlopsWarmup

logger = logging.getLogger(__name__)
VALIDATION_LOSS_BATCHES = 20


class TrainingInterrupted(RuntimeError):
    """Training stopped by Ctrl-C after saving a resumable checkpoint."""


@dataclass
class TrainResult:
    output_dir: Path
    global_step: int
    best_mrr: float
    history: TrainingHistory


def resolve_mixed_precision(setting: str) -> str:
    """``auto``: bf16 on CUDA devices that support it, fp16 on other CUDA devices, fp32 on CPU."""
    if setting != "auto":
        if setting not in ("no", "fp16", "bf16"):
            raise ConfigError(f"training.mixed_precision={setting!r}: expected auto, no, fp16 or bf16")
        return setting
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class SpladeTrainer:
    """Trains a SPLADE encoder from a :class:`TrainConfig`; see ``ko-sparse train --help``."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.output_dir = Path(config.output_dir)
        training = config.training
        self.accelerator = Accelerator(
            mixed_precision=resolve_mixed_precision(training.mixed_precision),
            gradient_accumulation_steps=training.gradient_accumulation_steps,
        )
        set_seed(training.seed)
        self.splits, eval_pairs = self._load_data()
        base_model = resolve_base_model(config.model.base_model, cache_dir() / "models")
        self.encoder = load_encoder(base_model, config.model.max_length, config.model.attn_implementation)
        self.query_idf = self._query_idf() if config.model.mode == "doc-only" else None
        self.evaluator = SynonymRankingEvaluator(
            eval_pairs,
            self.encoder.tokenizer,
            k_values=config.eval.k_values,
            num_distractors=config.eval.num_distractors,
            max_anchors=config.eval.max_anchors,
            seed=config.eval.seed,
            max_length=config.eval.max_length,
            batch_size=config.eval.batch_size,
        )
        self.loss = SpladeTripletLoss(config.loss)
        self.flops_warmup = FlopsWarmup(self.loss, config.loss.flops_warmup_steps)
        self.checkpoints = CheckpointManager(self.output_dir, training.save_total_limit)
        self.history = TrainingHistory()
        self.state = TrainerState()
        self.last_eval_step: int | None = None
        self._prepare()

    # ----------------------------------------------------------------------------------- setup
    def _query_idf(self) -> QueryIDF:
        """Doc-only queries: IDF over the training documents (positives and negatives)."""
        train = self.splits["train"]
        documents = sorted(set(train["positive"]) | set(train["negative"]))
        idf = idf_vector(self.encoder.tokenizer, documents)
        return QueryIDF(idf, trainable=self.config.model.idf_trainable)

    def _load_data(self) -> tuple[DatasetDict, list[tuple[str, str]]]:
        data = self.config.data
        if data.train is None:
            raise ConfigError("data.train is not set: give a DatasetDict directory, a .jsonl file or builtin:parakqc")
        train, eval_pairs_path = data.train, data.eval_pairs
        if train.startswith(BUILTIN_PREFIX):
            train_dir, builtin_pairs = resolve_builtin(train, cache_dir() / "data", self.config.training.seed)
            train, eval_pairs_path = str(train_dir), eval_pairs_path or str(builtin_pairs)
        splits = load_triplets(train, data.validation)
        if eval_pairs_path is not None:
            return splits, load_eval_pairs(eval_pairs_path)
        if "validation" not in splits:
            raise ConfigError("no data.eval_pairs and no validation split to evaluate on")
        validation = splits["validation"]
        return splits, list(zip(validation["anchor"], validation["positive"], strict=False))

    def _prepare(self) -> None:
        training = self.config.training
        collator = TripletCollator(self.encoder.tokenizer, self.config.model.max_length)
        train_split = self.splits["train"]
        self.sampler = EpochShuffleSampler(len(train_split), training.seed)
        train_loader = DataLoader(
            train_split, batch_size=training.batch_size, sampler=self.sampler, collate_fn=collator
        )
        self.validation_loader = None
        if "validation" in self.splits:
            self.validation_loader = DataLoader(
                self.splits["validation"], batch_size=training.batch_size, collate_fn=collator
            )
        mlm = mlm_of(self.encoder)
        optimizer = torch.optim.AdamW(mlm.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)
        self.mlm, self.optimizer, self.train_loader = self.accelerator.prepare(mlm, optimizer, train_loader)
        self.steps_per_epoch = math.ceil(len(self.train_loader) / training.gradient_accumulation_steps)
        if training.max_steps is not None:
            self.total_steps = training.max_steps
            self.epochs = math.ceil(training.max_steps / self.steps_per_epoch)
        else:
            self.total_steps = self.steps_per_epoch * training.epochs
            self.epochs = training.epochs
        processes = self.accelerator.num_processes
        scheduler = get_scheduler(
            training.scheduler,
            optimizer=self.optimizer,
            num_warmup_steps=int(self.total_steps * training.warmup_ratio) * processes,
            num_training_steps=self.total_steps * processes,
        )
        self.scheduler = self.accelerator.prepare(scheduler)

    # ------------------------------------------------------------------------------- training
    def train(self, resume: bool = False) -> TrainResult:
        """Run to ``total_steps``; with ``resume``, continue from the newest checkpoint."""
        accelerator = self.accelerator
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if accelerator.is_main_process:
            self.config.save(self.output_dir / "config.yaml")
        if resume:
            self._resume()
        if self.last_eval_step is None:
            self._evaluate()
        progress = tqdm(
            total=self.total_steps,
            initial=self.state.global_step,
            desc="Training",
            unit="step",
            disable=not accelerator.is_local_main_process,
        )
        try:
            self._train_epochs(progress)
        except KeyboardInterrupt:
            checkpoint = self.checkpoints.save(accelerator, self.state)
            raise TrainingInterrupted(
                f"interrupted at step {self.state.global_step}; checkpoint saved to {checkpoint}. "
                "Run the same command with --resume to continue."
            ) from None
        finally:
            progress.close()
        return self._finish()

    def _train_epochs(self, progress: tqdm) -> None:
        accelerator = self.accelerator
        window: dict[str, list[torch.Tensor]] = defaultdict(list)
        while self.state.epoch < self.epochs and self.state.global_step < self.total_steps:
            self.train_loader.set_epoch(self.state.epoch)
            loader = self.train_loader
            if self.state.batches_in_epoch:
                loader = accelerator.skip_first_batches(self.train_loader, self.state.batches_in_epoch)
            self.mlm.train()
            for batches_done, batch in enumerate(loader, start=self.state.batches_in_epoch + 1):
                self.flops_warmup.on_step_begin(self.state.global_step)
                with accelerator.accumulate(self.mlm):
                    total, components = self._loss(batch)
                    accelerator.backward(total)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(self.mlm.parameters(), self.config.training.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad()
                for name, value in {"total": total, **components}.items():
                    window[name].append(value.detach())
                if accelerator.sync_gradients:
                    self.state.global_step += 1
                    self.state.batches_in_epoch = batches_done
                    progress.update(1)
                    self._after_step(window, progress)
                    if self.state.global_step >= self.total_steps:
                        return
            self.state.epoch += 1
            self.state.batches_in_epoch = 0
            if self.config.eval.every_steps is None:
                self._evaluate()

    def _loss(
        self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Rows [0, B) anchors, [B, 2B) positives, [2B, 3B) negatives (see TripletCollator)."""
        ids, mask, token_mask = batch["input_ids"], batch["attention_mask"], batch["token_mask"]
        size = ids.shape[0] // 3
        anchor_ids, positive_ids = ids[:size], ids[size : 2 * size]
        if self.query_idf is not None:  # doc-only: the model encodes documents only
            positive, negative = splade_forward(model or self.mlm, ids[size:], mask[size:]).float().split(size)
            anchor = self.query_idf(anchor_ids, token_mask[:size])
            triplets = TripletBatch(
                anchor,
                positive,
                negative,
                expanded=positive,
                own_ids=positive_ids,
                own_mask=token_mask[size : 2 * size],
                target_ids=anchor_ids,
                target_mask=token_mask[:size],
                flops_inputs=torch.cat([positive, negative]),
            )
            return self.loss(triplets)
        anchor, positive, negative = splade_forward(model or self.mlm, ids, mask).float().split(size)
        flops_inputs = anchor if self.config.loss.flops_on == "anchor" else torch.cat([anchor, positive, negative])
        triplets = TripletBatch(
            anchor,
            positive,
            negative,
            expanded=anchor,
            own_ids=anchor_ids,
            own_mask=token_mask[:size],
            target_ids=positive_ids,
            target_mask=token_mask[size : 2 * size],
            flops_inputs=flops_inputs,
        )
        return self.loss(triplets)

    def _after_step(self, window: dict[str, list[torch.Tensor]], progress: tqdm) -> None:
        training, step = self.config.training, self.state.global_step
        if step % training.log_steps == 0 or step == self.total_steps:
            record = {name: torch.stack(values).mean().item() for name, values in window.items()}
            window.clear()
            record.update(step=step, epoch=self.state.epoch, lr=self.scheduler.get_last_lr()[0])
            self.history.train.append(record)
            progress.set_postfix(loss=f"{record['total']:.4f}", margin=f"{record['margin']:.4f}")
        every = self.config.eval.every_steps
        if every is not None and step % every == 0:
            self._evaluate()
        if step % training.save_steps == 0:
            self.checkpoints.save(self.accelerator, self.state)

    # ----------------------------------------------------------------------- evaluation, saving
    @torch.no_grad()
    def _validation_loss(self) -> float | None:
        """Mean total loss over the first validation batches (on the unwrapped model: main process only)."""
        if self.validation_loader is None:
            return None
        model = mlm_of(self.encoder)
        model.eval()
        totals = []
        for index, batch in enumerate(self.validation_loader):
            if index == VALIDATION_LOSS_BATCHES:
                break
            batch = {key: value.to(self.accelerator.device) for key, value in batch.items()}
            totals.append(self._loss(batch, model)[0].float())
        model.train()
        return torch.stack(totals).mean().item()

    def _evaluate(self) -> None:
        accelerator = self.accelerator
        self.last_eval_step = self.state.global_step
        if accelerator.is_main_process:
            with accelerator.autocast():
                metrics = self.evaluator(self.encoder, encode_anchors=self._encode_queries())
                validation_loss = self._validation_loss()
            record = {"step": self.state.global_step, "epoch": self.state.epoch, **metrics}
            if validation_loss is not None:
                record["validation_loss"] = validation_loss
            self.history.eval.append(record)
            summary = ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k not in ("step", "epoch"))
            tqdm.write(f"[step {self.state.global_step}] {summary}")
            if metrics["mrr"] > self.state.best_mrr:
                self.state.best_mrr = metrics["mrr"]
                self._save_model(self.output_dir / "best", record)
            self._save_history()
        accelerator.wait_for_everyone()

    def _encode_queries(self):
        """Doc-only: anchors are queries, weighted by the (possibly trained) IDF, not encoded."""
        if self.query_idf is None:
            return None
        idf = self.accelerator.unwrap_model(self.query_idf).idf()
        return lambda texts: idf_query_vectors(self.encoder.tokenizer, idf, texts)

    def _save_model(self, target: Path, metrics: dict[str, float]) -> None:
        if self.query_idf is not None:
            save_doc_only(self.encoder, self.accelerator.unwrap_model(self.query_idf).idf(), target)
        else:
            self.encoder.save(str(target))
        self.config.save(target / "ko_sparse_training.yaml")
        TrainingHistory(eval=[metrics]).save(target / "eval_results.json")

    def _save_history(self) -> None:
        self.history.save(self.output_dir / "training_history.json")
        self.history.plot(self.output_dir / "training_curves.png")

    def _resume(self) -> None:
        checkpoint = self.checkpoints.latest()
        if checkpoint is None:
            raise ConfigError(f"--resume: no checkpoint under {self.checkpoints.root}")
        self.state = self.checkpoints.load(self.accelerator, checkpoint)
        history_file = self.output_dir / "training_history.json"
        if history_file.is_file():
            history = TrainingHistory.load(history_file)
            step = self.state.global_step
            self.history = TrainingHistory(
                train=[r for r in history.train if r["step"] <= step],
                eval=[r for r in history.eval if r["step"] <= step],
            )
            self.last_eval_step = self.history.eval[-1]["step"] if self.history.eval else None
        tqdm.write(f"Resumed from {checkpoint} (step {self.state.global_step}, epoch {self.state.epoch})")

    def _finish(self) -> TrainResult:
        accelerator = self.accelerator
        if self.last_eval_step != self.state.global_step:
            self._evaluate()
        if accelerator.is_main_process:
            last = self.history.eval[-1] if self.history.eval else {}
            self._save_model(self.output_dir / "final", last)
            self._save_history()
        return TrainResult(self.output_dir, self.state.global_step, self.state.best_mrr, self.history)
