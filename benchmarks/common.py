"""Timing and reporting shared by the benchmarks: medians of repeated runs, one JSON line per figure."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).parent / "results"


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
    **extra: object,
) -> dict:
    """Print one JSON line and append it to ``results/<name>.jsonl``; ``ratio`` > 1 means ko-sparse wins."""
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
        **extra,
    }
    print(json.dumps(record, ensure_ascii=False), flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with (RESULTS_DIR / f"{name}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record
