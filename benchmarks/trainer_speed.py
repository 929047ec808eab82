"""Training speed through ``ko-sparse train`` itself (``Training`` on ``SparseEncoderTrainer``), eager and
with ``training.compile``, at two shapes:

* ``notebook``: the v21.3 notebook's recipe and batch (64 triplets, every text 64 tokens);
* ``realistic``: the retrieval recipe on 64 rows of a query (64 tokens), a positive and a hard negative
  passage (256 tokens each).

Texts are windows of the bundled medical corpus cut to the shape's token counts, so every batch has the
same padded shape and the same FLOPs. Each run trains ``WARMUP_STEPS + repeat`` optimizer steps; a
callback times each step (CUDA synchronised), the first ``WARMUP_STEPS`` (compilation, allocator warm-up)
are left out of the figure and reported as the compile overhead. The FLOPs of a step are counted once,
eagerly, by ``FlopCounterMode`` over the trainer's own ``compute_loss`` + backward on one collated batch
(a compiled graph hides its operations from the counter). Figures:

* ``train_<shape>``: compiled steps/s against eager steps/s (the peer), with tokens/s, peak memory and
  the compile overhead;
* ``train_<shape>_flops``: the compiled step's achieved FLOP/s against the machine's measured matmul rate
  (bf16 on CUDA): the share of the hardware the trainer uses (goal on a GPU: 0.4).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoTokenizer, TrainerCallback

from benchmarks.common import FULL_MODEL, arguments, default_device, matmul_flops_per_second, report, synchronise
from benchmarks.encoding import documents
from ko_sparse.data.jsonl import write_jsonl
from ko_sparse.model.base_models import resolve_base_model
from ko_sparse.model.max_pooled_decoder import fused_max_pooling
from ko_sparse.paths import cache_dir
from ko_sparse.train.config import load_config
from ko_sparse.train.trainer import Training

WARMUP_STEPS = 3


@dataclass(frozen=True)
class Shape:
    name: str
    recipe: str
    rows: int
    query_tokens: int
    document_tokens: int


class StepTimer(TrainerCallback):
    """Wall seconds of every optimizer step, device work included: from one step's end to the next's (the
    first from its beginning), so the data loading between the trainer's step callbacks counts too."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.last = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if not self.seconds and not self.last:
            synchronise()
            self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        synchronise()
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now


def token_windows(tokenizer, stream: list[int], count: int, tokens: int, offset: int) -> list[str]:
    """``count`` texts of about ``tokens`` tokens each: windows of a token ``stream``, decoded (re-tokenised,
    a window can come out a token or two off)."""
    starts = [(offset + k * tokens) % (len(stream) - tokens) for k in range(count)]
    return [tokenizer.decode(stream[s : s + tokens]) for s in starts]


def write_data(folder: Path, shape: Shape, tokenizer) -> list[str]:
    """Training rows and a small evaluation set for ``shape``'s recipe; returns the config overrides."""
    rows = shape.rows * (WARMUP_STEPS + 12)
    stream = [i for text in documents(1020) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    queries = token_windows(tokenizer, stream, rows, shape.query_tokens - 2, 0)  # 2: [CLS] and [SEP]
    positives = token_windows(tokenizer, stream, rows, shape.document_tokens - 2, 7_919)
    negatives = token_windows(tokenizer, stream, rows, shape.document_tokens - 2, 15_401)
    if shape.recipe == "retrieval":
        columns = {"query": queries, "positive": positives, "negative": negatives}
        DatasetDict({"train": Dataset.from_dict(columns)}).save_to_disk(str(folder / "triplets"))
        pairs = [{"source": q, "target": p} for q, p in zip(queries[:40], positives, strict=False)]
        write_jsonl(folder / "pairs.jsonl", pairs)  # evaluated once, at the end: synonym ranking is enough
        return [
            f"data.train={folder / 'triplets'}",
            f"data.eval_pairs={folder / 'pairs.jsonl'}",
            "loss.recipe=retrieval",
        ]
    # the notebook's triplets are sentences of one kind: its shapes give every text the same length
    columns = {"anchor": queries, "positive": positives, "negative": negatives}
    triplets = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    write_jsonl(folder / "triplets.jsonl", triplets)
    write_jsonl(folder / "pairs.jsonl", [{"source": t["anchor"], "target": t["positive"]} for t in triplets[:40]])
    return [f"data.train={folder / 'triplets.jsonl'}", f"data.eval_pairs={folder / 'pairs.jsonl'}"]


EAGER, COMPILED = ("training.compile=false",), ("training.compile=true",)


def config(folder: Path, shape: Shape, spec: str, data: list[str], compiling: tuple[str, ...], steps: int):
    return load_config(
        None,
        [
            f"model.base_model={spec}",
            f"model.max_length={shape.document_tokens}",
            f"training.batch_size={shape.rows}",
            "training.gradient_accumulation_steps=1",
            f"training.max_steps={steps}",
            "training.learning_rate=1e-6",
            f"training.log_steps={steps}",
            f"training.save_steps={steps * 10}",
            "training.trainer_args.eval_on_start=false",
            f"eval.every_steps={steps * 10}",
            "eval.num_distractors=40",
            "eval.max_anchors=20",
            "eval.batch_size=32",
            f"output_dir={folder / 'run'}",
            *compiling,
            *data,
        ],
    )


def step_flops(training: Training) -> tuple[int, int]:
    """(FLOPs, padded tokens) of one eager training step on the trainer's first collated batch."""
    trainer, _, _ = training._trainer(resume=False)
    rows = [trainer.train_dataset[i] for i in range(trainer.args.per_device_train_batch_size)]
    inputs = trainer._prepare_inputs(trainer.data_collator(rows))
    tokens = sum(int(v.numel()) for k, v in inputs.items() if k.endswith("input_ids"))
    model = trainer.model.train()
    dtype = torch.bfloat16 if trainer.args.bf16 else torch.float16 if trainer.args.fp16 else None
    with FlopCounterMode(display=False) as counter, fused_max_pooling(model):
        with torch.autocast(trainer.args.device.type, dtype=dtype, enabled=dtype is not None):
            loss = trainer.compute_loss(model, dict(inputs))
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops(), tokens


def timed_run(folder: Path, shape: Shape, spec: str, data: list[str], compiling: tuple[str, ...], repeat: int) -> dict:
    """Train ``WARMUP_STEPS + repeat`` steps; their seconds, the peak device memory and (eager runs only) the
    step's FLOPs."""
    timer = StepTimer()
    training = Training(config(folder, shape, spec, data, compiling, WARMUP_STEPS + repeat), callbacks=[timer])
    flops, tokens = step_flops(training) if compiling == EAGER else (0, 0)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    training.train(overwrite=True)  # the eager run before it used the same folder
    steady = timer.seconds[WARMUP_STEPS:]
    peak = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else float("nan")
    overhead = sum(timer.seconds[:WARMUP_STEPS]) - WARMUP_STEPS * statistics.median(steady)
    return dict(seconds=steady, flops=flops, tokens=tokens, peak_gb=round(peak, 2), warmup_overhead_s=overhead)


def bench_shape(shape: Shape, spec: str, repeat: int, peak: list[float], prefix: str = "") -> None:
    """The eager run, then the compiled run against it; the figures are named ``<prefix>train_<shape>...``."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(spec, cache_dir() / "models"))
    with tempfile.TemporaryDirectory(prefix=f"train-{shape.name}-") as tmp:
        folder = Path(tmp)
        data = write_data(folder, shape, tokenizer)
        eager = timed_run(folder, shape, spec, data, EAGER, repeat)
        common = dict(
            model=spec,
            recipe=shape.recipe,
            rows=shape.rows,
            query_tokens=shape.query_tokens,
            document_tokens=shape.document_tokens,
            tokens_per_step=eager["tokens"],
            counted_flops_per_step=eager["flops"],
            precision="bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32",
        )
        report_utilisation(f"{prefix}train_{shape.name}_eager", eager, peak, common)
        compiled = timed_run(folder, shape, spec, data, COMPILED, repeat)
    report_speedup(f"{prefix}train_{shape.name}", compiled, eager, COMPILED, common)
    report_utilisation(f"{prefix}train_{shape.name}", compiled, peak, common)


def report_speedup(name: str, compiled: dict, eager: dict, compiling: tuple[str, ...], common: dict) -> None:
    """Compiled steps/s against eager steps/s, with tokens/s, peak memory and what compiling cost."""
    saved = statistics.median(eager["seconds"]) - statistics.median(compiled["seconds"])
    overhead = compiled["warmup_overhead_s"] - eager["warmup_overhead_s"]
    report(
        name,
        [1 / s for s in compiled["seconds"]],
        "steps/s",
        "the same ko-sparse train run, eager (training.compile=false)",
        [1 / s for s in eager["seconds"]],
        settings=" ".join(compiling),
        tokens_per_second=round(common["tokens_per_step"] / statistics.median(compiled["seconds"])),
        eager_tokens_per_second=round(common["tokens_per_step"] / statistics.median(eager["seconds"])),
        peak_memory_gb=compiled["peak_gb"],
        eager_peak_memory_gb=eager["peak_gb"],
        compile_overhead_s=round(overhead, 1),
        break_even_steps=round(overhead / saved) if saved > 0 else None,  # steps until compiling has paid
        **common,
    )


def report_utilisation(name: str, run: dict, peak: list[float], common: dict) -> None:
    """The run's achieved FLOP/s against the machine's measured matmul rate: the share it uses."""
    report(
        f"{name}_flops",
        [common["counted_flops_per_step"] / s for s in run["seconds"]],
        "FLOP/s",
        "measured matmul FLOP/s of this machine (bf16 8192x8192 on CUDA, fp32 2048x2048 on CPU)",
        peak,
        target=0.4 if torch.cuda.is_available() else None,
        **common,
    )


def shapes(quick: bool, device: torch.device) -> tuple[str, list[Shape]]:
    if device.type == "cuda":
        return FULL_MODEL, [Shape("notebook", "notebook", 64, 64, 64), Shape("realistic", "retrieval", 64, 64, 256)]
    if quick:
        return "tiny:64x2", [Shape("notebook", "notebook", 16, 32, 32), Shape("realistic", "retrieval", 16, 16, 64)]
    return FULL_MODEL, [Shape("notebook", "notebook", 4, 64, 64), Shape("realistic", "retrieval", 4, 64, 256)]


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "the tiny model at CPU sizes (16 rows; 32, or 16 and 64 tokens)")
    device = default_device()
    spec, selected = shapes(args.quick, device)
    size = 8192 if device.type == "cuda" else 2048
    peak = matmul_flops_per_second(device, args.repeat, size=size)
    for shape in selected:
        bench_shape(shape, spec, args.repeat, peak)


if __name__ == "__main__":
    main()
