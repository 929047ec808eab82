"""Timing and reporting shared by the benchmarks: medians of repeated runs, one JSON line per figure."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from sentence_transformers import SparseEncoder
from torch.utils.flop_counter import FlopCounterMode

from ko_sparse.model.base_models import resolve_base_model
from ko_sparse.model.splade import load_encoder
from ko_sparse.paths import cache_dir

RESULTS_DIR = Path(__file__).parent / "results"
MIN_REPEATS = 5
FULL_MODEL = "random:ax-encoder-base"  # A.X-Encoder-base's architecture with random weights


def repeats(text: str) -> int:
    value = int(text)
    if value < MIN_REPEATS:
        raise argparse.ArgumentTypeError(f"at least {MIN_REPEATS} repeats: a figure is a median with its range")
    return value


def arguments(argv: list[str] | None, description: str, quick_help: str) -> argparse.Namespace:
    """The options every benchmark takes (so that ``all`` can pass the same ones to each)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"the same as --size quick: {quick_help}")
    parser.add_argument(
        "--size",
        choices=("quick", "full"),
        default="full",
        help="quick: the tiny model at 2-core CPU sizes; full: the production-size stand-in "
        f"({FULL_MODEL}), at sizes the machine (CPU or GPU) runs in minutes",
    )
    parser.add_argument(
        "--repeat",
        type=repeats,
        default=MIN_REPEATS,
        help=f"timed runs per figure (at least {MIN_REPEATS}); the median and the min-max range are reported",
    )
    from ko_sparse.opensearch.client import CONNECTION_OPTIONS  # here: the GPU check runs without opensearch-py

    for option in CONNECTION_OPTIONS:  # the same connection options as every ko-sparse command
        extra = {"action": "store_true"} if option.is_flag else {}
        parser.add_argument(option.flag, help=f"opensearch benchmark: {option.help}", **extra)
    args = parser.parse_args(argv)
    args.quick = args.quick or args.size == "quick"
    args.size = "quick" if args.quick else args.size
    return args


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def machine() -> str:
    """A short description of where the figure was measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {torch.get_num_threads()} threads{device}, torch {torch.__version__}"


def synchronise() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call (CUDA synchronised)."""
    synchronise()
    start = time.perf_counter()
    fn()
    synchronise()
    return time.perf_counter() - start


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    """Seconds of ``repeat`` runs of ``fn`` after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    return [seconds(fn) for _ in range(repeat)]


def paired_timed(
    ours: Callable[[], object], theirs: Callable[[], object], repeat: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Both sides timed the same way: the same warm-up, then ``repeat`` interleaved runs of each, so a load
    that comes and goes on the machine reaches both alike. Seconds per run, ours and theirs."""
    for _ in range(warmup):
        ours()
        theirs()
    pairs = [(seconds(ours), seconds(theirs)) for _ in range(repeat)]
    return [a for a, _ in pairs], [b for _, b in pairs]


@dataclass(frozen=True)
class ProcessRun:
    """One command run in its own process: wall seconds, peak resident memory, what it printed."""

    seconds: float
    peak_mb: float
    stdout: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def measured_process(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> ProcessRun:
    """Run ``command``; its peak RSS is ``RUSAGE_CHILDREN`` of a small wrapper process that runs only it.
    A failure exits with the command's output."""
    wrapper = (
        "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} ... failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return ProcessRun(seconds, int(done.stderr.strip().splitlines()[-1]) / 1024, done.stdout)


def per_second(count: float, runs: Sequence[float]) -> list[float]:
    """Rates (``count`` per second) of each timed run."""
    return [count / run for run in runs]


def _samples(value: float | Sequence[float]) -> list[float]:
    return [float(v) for v in value] if isinstance(value, Sequence) else [float(value)]


def report(
    name: str,
    value: float | Sequence[float],
    unit: str,
    peer: str,
    peer_value: float | Sequence[float],
    higher_is_better: bool = True,
    target: float | None = None,
    **extra: object,
) -> dict:
    """Print one JSON line and append it to ``results/<name>.jsonl``; ``ratio`` > 1 means ko-sparse wins.

    ``value`` and ``peer_value`` are the repeated measurements (or one number); the record holds their
    medians and min-max ranges, and the ratio of each repeat with its peer's (paired when both have the
    same number of repeats, else every combination): ``ratio`` is their median, ``ratio_range`` their
    range. ``target`` is the ratio the figure is meant to reach; the speed page's verdict uses the median."""
    ours, theirs = _samples(value), _samples(peer_value)
    pairs = zip(ours, theirs, strict=True) if len(ours) == len(theirs) else [(a, b) for a in ours for b in theirs]
    ratios = [a / b if higher_is_better else b / a for a, b in pairs]
    record = {
        "name": name,
        "value": round(statistics.median(ours), 6),
        "value_range": [round(min(ours), 6), round(max(ours), 6)],
        "unit": unit,
        "peer": peer,
        "peer_value": round(statistics.median(theirs), 6),
        "peer_value_range": [round(min(theirs), 6), round(max(theirs), 6)],
        "ratio": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "repeats": len(ours),
        "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": target,
        **extra,
    }
    print(json.dumps(record, ensure_ascii=False), flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with (RESULTS_DIR / f"{name}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record


def tiny_encoder(spec: str, max_length: int, device: torch.device) -> SparseEncoder:
    """A random ModernBERT with the production vocabulary (``tiny:HIDDENxLAYERS`` or the production-size
    ``random:ax-encoder-base``), built once and cached."""
    path = resolve_base_model(spec, cache_dir() / "models")
    return load_encoder(path, max_length=max_length).to(device)


def counted_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``fn``, as counted by torch (matmuls and attention)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_flops_per_second(device: torch.device, repeat: int, size: int = 2048) -> list[float]:
    """The machine's measured dense matmul rate per run (fp32 on CPU, bf16 on CUDA): the physical limit."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    left = torch.randn(size, size, device=device, dtype=dtype)
    right = torch.randn(size, size, device=device, dtype=dtype)
    return per_second(2 * size**3, timed(lambda: left @ right, repeat))


def report_utilisation(
    name: str, flops: float, runs: Sequence[float], peak: Sequence[float], what: str, **extra: object
) -> dict:
    """Achieved model FLOP/s of each timed run beside the machine's matmul FLOP/s (``ratio`` = the fraction
    reached). ``flops`` are the matmul and attention FLOPs torch executes (``FlopCounterMode``), not a 6N rule."""
    return report(f"{name}_flops", per_second(flops, runs), "FLOP/s", what, peak, counted_flops=flops, **extra)
