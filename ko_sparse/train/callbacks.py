"""What ko-sparse adds to ``SparseEncoderTrainer`` as callbacks: the best model saved on each improvement,
the history written as it grows, a quiet progress bar, and Ctrl-C turned into a resumable checkpoint."""

from __future__ import annotations

import math
import signal
from collections.abc import Callable
from pathlib import Path

import torch
from sentence_transformers.sparse_encoder.callbacks import SpladeRegularizerWeightSchedulerCallback
from sentence_transformers.sparse_encoder.losses import SpladeLoss
from transformers import ProgressCallback, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ko_sparse.train.history import TrainingHistory
from ko_sparse.usage import peak_resident_bytes

HISTORY_FILE, CURVES_FILE = "training_history.json", "training_curves.png"


class BestModelSaver(TrainerCallback):
    """After each evaluation, ``save(model, folder, record)`` into ``best/`` when the primary metric improved.

    The metric's key is read from the evaluator once it has run (``eval_<primary metric>``); on resume the
    best so far comes back from the restored log history."""

    def __init__(self, metric_key: Callable[[], str], save: Callable, folder: Path) -> None:
        self.metric_key = metric_key
        self.save = save
        self.folder = folder
        self.best = -math.inf

    def on_train_begin(self, args, state: TrainerState, control, **kwargs):
        seen = [record for record in state.log_history if any(key.startswith("eval_") for key in record)]
        if seen:
            key = self.metric_key()
            self.best = max((record[key] for record in seen if key in record), default=-math.inf)

    def on_evaluate(self, args, state: TrainerState, control, model=None, metrics=None, **kwargs):
        value = (metrics or {}).get(self.metric_key())
        if value is not None and value > self.best and state.is_world_process_zero:
            self.best = value
            self.save(model, self.folder, {"step": state.global_step, **metrics})
        elif value is not None:
            self.best = max(self.best, value)


class HistoryWriter(TrainerCallback):
    """``training_history.json`` and ``training_curves.png`` from the trainer's log history, after every
    log and evaluation (a crash leaves the history up to its last record)."""

    def __init__(self, output_dir: Path, primary_metric: Callable[[], str]) -> None:
        self.output_dir = output_dir
        self.primary_metric = primary_metric

    def write(self, state: TrainerState) -> TrainingHistory:
        history = TrainingHistory.from_log_history(state.log_history, self.primary_metric())
        if state.is_world_process_zero:
            history.save(self.output_dir / HISTORY_FILE)
            history.plot(self.output_dir / CURVES_FILE)
        return history

    def on_log(self, args, state: TrainerState, control, **kwargs):
        self.write(state)


class TrainingProgress(ProgressCallback):
    """The library's progress bar with the latest loss on it, instead of a printed dict per log (every
    logged value is in ``training_history.json``); each evaluation is one line with the metric that picks
    the best model."""

    def __init__(self, primary_metric: Callable[[], str]) -> None:
        super().__init__()
        self.primary_metric = primary_metric

    def on_log(self, args, state: TrainerState, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
        key = f"eval_{self.primary_metric()}"
        if key in logs:  # the trainer appended ``logs`` to the history before calling back
            earlier = [record[key] for record in state.log_history[:-1] if key in record]
            best = " (best so far)" if not earlier or logs[key] > max(earlier) else ""
            self.training_bar.write(f"step {state.global_step}: {self.primary_metric()} {logs[key]:.4f}{best}")


class GracefulInterrupt(TrainerCallback):
    """The first Ctrl-C (SIGINT) ends training at the end of the current optimizer step with a checkpoint
    saved; a second one interrupts at once. Data-parallel processes agree on the step to stop at."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped = False
        self.previous_handler = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def on_train_begin(self, args, state, control, **kwargs):
        try:
            self.previous_handler = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C to Python
            self.previous_handler = None

    def on_step_end(self, args: TrainingArguments, state, control: TrainerControl, **kwargs):
        if self._anyone_requested(args):
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self.restore()

    def restore(self) -> None:
        """Ctrl-C handled as before training again (also when training raised, so no ``on_train_end``)."""
        if self.previous_handler is not None:
            signal.signal(signal.SIGINT, self.previous_handler)
            self.previous_handler = None

    def _anyone_requested(self, args: TrainingArguments) -> bool:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return self.requested
        flag = torch.tensor([float(self.requested)], device=args.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())


class FlopsWarmup(SpladeRegularizerWeightSchedulerCallback):
    """The library's quadratic FLOPS warm-up, over a number of steps (``loss.flops_warmup_steps``, at least
    one) rather than a share of the run, so a recipe means the same whatever the run's length."""

    def __init__(self, loss: SpladeLoss, steps: int) -> None:
        super().__init__(loss, scheduler_type="quadratic")
        self.steps = max(1, steps)

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.warmup_steps = self.steps


class BatchArithmetic(TrainerCallback):
    """Says once, at the start, how the global batch is made (texts per device x accumulation x processes)
    and how many optimizer steps the run takes: the figures to check before a long multi-GPU run."""

    def __init__(self, print_line: Callable[[str], None] = print) -> None:
        self.print_line = print_line

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control, **kwargs):
        if state.is_world_process_zero:
            self.print_line(batch_arithmetic(args, state.max_steps))


def batch_arithmetic(args: TrainingArguments, steps: int) -> str:
    """``64 rows per device x 2 accumulation x 4 processes = 512 rows per optimizer step; 1,000 steps``."""
    per_device, accumulation, processes = (
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        args.world_size,
    )
    total = per_device * accumulation * processes
    return (
        f"batch: {per_device} rows per device x {accumulation} accumulation x {processes} "
        f"process{'es' if processes > 1 else ''} = {total} rows per optimizer step; {steps:,} steps"
    )


class PeakMemory(TrainerCallback):
    """Adds the process's peak resident memory (and the GPU's peak allocation) to the log record just
    written, so ``training_history.json`` says what a run needed. Runs before :class:`HistoryWriter`."""

    def on_log(self, args, state: TrainerState, control, logs=None, **kwargs):
        peaks = {"peak_memory_gb": round(peak_resident_bytes() / 1e9, 3)}
        if torch.cuda.is_available():
            peaks["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
        if state.log_history:
            state.log_history[-1].update(peaks)
        if logs is not None:
            logs.update(peaks)
