"""Training history: the trainer's logged loss components and evaluations, as JSON and as curves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOSS_COMPONENTS = ("self", "synonym", "margin", "contrastive", "base_loss", "document_regularizer_loss")
COMPONENT_LABELS = {
    "document_regularizer_loss": "FLOPS (documents)",
    "query_regularizer_loss": "FLOPS (queries)",
    "base_loss": "ranking loss",
}
NEGATIVE_TOTAL = "0: below it, the self and synonym rewards\n(negative terms) outweigh the penalties"
NOT_METRICS = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "step")


@dataclass
class TrainingHistory:
    """``train``: one record per logging step (``step``, ``epoch``, ``loss``: the weighted total, each
    weighted component, ``learning_rate``...). ``eval``: one per evaluation (``step``, the evaluator's
    metrics without their prefix, ``validation_loss``). ``primary``: the metric the best model is chosen by."""

    train: list[dict[str, Any]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)
    primary: str = "mrr"

    @classmethod
    def from_log_history(cls, log_history: list[dict[str, Any]], primary_metric: str) -> TrainingHistory:
        """Split the trainer's log records; ``primary_metric`` is the evaluator's prefixed name
        (``synonyms_mrr``), whose prefix is dropped from every metric of that evaluator."""
        prefix = primary_metric.rsplit("_", 1)[0] + "_" if "_" in primary_metric else ""
        history = cls(primary=primary_metric.removeprefix(prefix))
        for record in log_history:
            if "loss" in record:
                history.train.append(dict(record))
            elif any(key.startswith("eval_") for key in record):
                history.eval.append(_eval_record(record, prefix))
        return history

    def best(self, metric: str | None = None) -> dict[str, Any] | None:
        metric = metric or self.primary
        return max((r for r in self.eval if metric in r), key=lambda r: r[metric], default=None)

    def save(self, path: str | Path) -> None:
        payload = {"primary_metric": self.primary, "train": self.train, "eval": self.eval}
        Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TrainingHistory:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(train=data["train"], eval=data["eval"], primary=data.get("primary_metric", "mrr"))

    def plot(self, path: str | Path) -> None:
        """Write :meth:`figure` as a PNG."""
        import matplotlib.pyplot as plt

        figure = self.figure()
        figure.savefig(path, dpi=110)
        plt.close(figure)

    def figure(self):
        """Losses on top (total, each weighted component, FLOPS), evaluation metrics below; every line labelled."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(2, 3, figsize=(16, 8.5))
        self._plot_total(axes[0, 0])
        self._plot_components(axes[0, 1], [k for k in LOSS_COMPONENTS if "regularizer" not in k], "Loss components")
        self._plot_components(axes[0, 2], ["document_regularizer_loss", "query_regularizer_loss"], "FLOPS (weighted)")
        metrics = [k for k in (self.eval[0] if self.eval else {}) if k not in ("step", "epoch", "validation_loss")]
        recalls = [k for k in metrics if k.startswith(("recall@", "dot_recall@"))]
        ranking = [k for k in metrics if k not in recalls and not k.endswith(("_active_dims", "sparsity_ratio"))]
        self._plot_metrics(axes[1, 0], [self.primary], f"{self.primary} (best model)")
        self._plot_metrics(axes[1, 1], recalls[:4], "Recall")
        self._plot_metrics(axes[1, 2], [k for k in ranking if k != self.primary][:4], "Other metrics")
        figure.tight_layout()
        return figure

    def _plot_total(self, axis) -> None:
        axis.plot([r["step"] for r in self.train], [r["loss"] for r in self.train], "-o", ms=3, label="train")
        validation = [r for r in self.eval if "validation_loss" in r]
        if validation:
            axis.plot(
                [r["step"] for r in validation],
                [r["validation_loss"] for r in validation],
                "-s",
                ms=3,
                label="validation",
            )
        if any(key in record for record in self.train for key in ("self", "synonym")):
            # the notebook recipe's token-activation terms are rewards: the sum can go below zero
            axis.axhline(0, color="grey", lw=0.8, label=NEGATIVE_TOTAL)
        axis.set_title("Total loss (weighted sum of the components)")
        _finish(axis)

    def _plot_components(self, axis, keys: list[str], title: str) -> None:
        for key in keys:
            records = [r for r in self.train if key in r]
            if records:
                axis.plot(
                    [r["step"] for r in records], [r[key] for r in records], "-", label=COMPONENT_LABELS.get(key, key)
                )
        axis.set_title(title)
        _finish(axis)

    def _plot_metrics(self, axis, keys: list[str], title: str) -> None:
        for key in keys:
            records = [r for r in self.eval if key in r]
            axis.plot([r["step"] for r in records], [r[key] for r in records], "-o", ms=3, label=key)
        best = self.best()
        if best is not None and keys == [self.primary]:
            axis.axhline(
                best[self.primary],
                color="r",
                linestyle="--",
                alpha=0.5,
                label=f"best model: {best[self.primary]:.3f} (step {best['step']})",
            )
        axis.set_ylim(0, 1)
        axis.set_title(title)
        _finish(axis)


def _eval_record(record: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {"step": record.get("step"), "epoch": record.get("epoch")}
    for key, value in record.items():
        name = key.removeprefix("eval_")
        if key == "eval_loss":
            out["validation_loss"] = value
        elif key.startswith("eval_") and name.startswith(prefix) and not name.endswith(NOT_METRICS):
            out[name.removeprefix(prefix)] = value
    return out


def _finish(axis) -> None:
    axis.set_xlabel("optimizer step")
    axis.grid(True, alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
