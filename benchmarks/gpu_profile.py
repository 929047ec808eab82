"""Where a training step's time goes: ``torch.profiler`` over two steps of a ``ko-sparse train`` run at the
realistic shape (``benchmarks.trainer_speed``), compiled or eager. Prints the kernels by device time and
the operators by host time (their "Self CUDA time total" and "Self CPU time total" lines: device work
against host time over the profiled steps).

    python -m benchmarks gpu_profile [--eager]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import AutoTokenizer, TrainerCallback

from benchmarks.common import default_device, synchronise
from benchmarks.trainer_speed import COMPILED, EAGER, config, shapes, write_data
from ko_sparse.model.base_models import resolve_base_model
from ko_sparse.paths import cache_dir
from ko_sparse.train.trainer import Training

FIRST, LAST = 5, 6  # the profiled optimizer steps (compiled by then)


class StepProfiler(TrainerCallback):
    def __init__(self) -> None:
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        self.profiler = profile(activities=activities)

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == FIRST - 1:
            synchronise()
            self.profiler.start()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == LAST:
            synchronise()
            self.profiler.stop()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    compiling = EAGER if "--eager" in argv else COMPILED
    device = default_device()
    spec, selected = shapes(device.type != "cuda", device)
    shape = selected[-1]
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(spec, cache_dir() / "models"))
    profiler = StepProfiler()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(Path(tmp), shape, tokenizer)
        Training(config(Path(tmp), shape, spec, data, compiling, LAST + 1), callbacks=[profiler]).train()
    events = profiler.profiler.key_averages()
    sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=30, max_name_column_width=70))
    print(events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=70))


if __name__ == "__main__":
    main()
