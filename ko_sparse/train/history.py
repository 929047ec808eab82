"""Training history: logged loss components and evaluations, saved as JSON and drawn as curves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PANELS = (
    ("train", "total", "Total loss"),
    ("train", "margin", "Triplet margin loss"),
    ("train", "flops", "FLOPS"),
    ("eval", "recall@5", "Recall@5"),
    ("eval", "recall@10", "Recall@10"),
    ("eval", "mrr", "MRR"),
)


@dataclass
class TrainingHistory:
    train: list[dict[str, Any]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)

    def best(self, metric: str = "mrr") -> dict[str, Any] | None:
        return max(self.eval, key=lambda record: record[metric], default=None)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"train": self.train, "eval": self.eval}, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TrainingHistory:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(train=data["train"], eval=data["eval"])

    def plot(self, path: str | Path) -> None:
        """Six panels against the optimizer step: losses on top, Recall@5/10 and MRR below."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(2, 3, figsize=(15, 8))
        for axis, (kind, key, title) in zip(axes.flat, PANELS, strict=False):
            records = [r for r in getattr(self, kind) if key in r]
            axis.plot([r["step"] for r in records], [r[key] for r in records], "-o", markersize=3)
            if kind == "eval" and records:
                axis.set_ylim(0, 1)
                best = self.best(key)
                axis.axhline(best[key], color="r", linestyle="--", alpha=0.4)
            axis.set_title(title)
            axis.set_xlabel("step")
            axis.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
