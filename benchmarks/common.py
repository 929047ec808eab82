"""Timing and reporting shared by the benchmarks: medians of repeated runs, one JSON line per figure."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
from sentence_transformers import SparseEncoder
from torch.utils.flop_counter import FlopCounterMode

from ko_sparse.model.splade import load_encoder
from ko_sparse.model.tiny import resolve_base_model
from ko_sparse.opensearch.client import CONNECTION_OPTIONS
from ko_sparse.paths import cache_dir

RESULTS_DIR = Path(__file__).parent / "results"


def arguments(argv: list[str] | None, description: str, quick_help: str, repeat: int = 3) -> argparse.Namespace:
    """The options every benchmark takes (so that ``all`` can pass the same ones to each)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--repeat", type=int, default=repeat, help="timed runs per figure; the median is reported")
    for option in CONNECTION_OPTIONS:  # the same connection options as every ko-sparse command
        extra = {"action": "store_true"} if option.is_flag else {}
        parser.add_argument(option.flag, help=f"opensearch benchmark: {option.help}", **extra)
    return parser.parse_args(argv)


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


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs after ``warmup`` runs (CUDA synchronised)."""
    for _ in range(warmup):
        fn()
    synchronise()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronise()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(
    name: str,
    value: float,
    unit: str,
    peer: str,
    peer_value: float,
    higher_is_better: bool = True,
    target: float | None = None,
    **extra: object,
) -> dict:
    """Print one JSON line and append it to ``results/<name>.jsonl``; ``ratio`` > 1 means ko-sparse wins.

    ``target`` is the ratio the figure is meant to reach (recorded, so the README table can say
    whether it is met)."""
    ratio = value / peer_value if higher_is_better else peer_value / value
    record = {
        "name": name,
        "value": round(value, 6),
        "unit": unit,
        "peer": peer,
        "peer_value": round(peer_value, 6),
        "ratio": round(ratio, 3),
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
    """A random ModernBERT with the production vocabulary (``tiny:HIDDENxLAYERS``), built once and cached."""
    path = resolve_base_model(spec, cache_dir() / "models")
    return load_encoder(path, max_length=max_length).to(device)


def counted_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``fn``, as counted by torch (matmuls and attention)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_flops_per_second(device: torch.device, repeat: int, size: int = 2048) -> float:
    """The machine's measured dense matmul rate (fp32 on CPU, bf16 on CUDA): the physical limit."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    left = torch.randn(size, size, device=device, dtype=dtype)
    right = torch.randn(size, size, device=device, dtype=dtype)
    return 2 * size**3 / median_seconds(lambda: left @ right, repeat)


def report_utilisation(name: str, flops: float, seconds: float, peak: float, what: str, **extra: object) -> dict:
    """Achieved model FLOP/s beside the machine's matmul FLOP/s (``ratio`` = the fraction reached).

    ``flops`` are the matmul and attention FLOPs torch executes (``FlopCounterMode``), not a 6N rule."""
    return report(f"{name}_flops", flops / seconds, "FLOP/s", what, peak, counted_flops=flops, **extra)
