"""``ko-sparse train``."""

from __future__ import annotations

from pathlib import Path

import click

from ko_sparse.cli.errors import user_errors
from ko_sparse.train.config import PRESETS, load_config, preset_path


@click.command("train")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Experiment spec (YAML with sections model, data, training, loss, eval).",
)
@click.option(
    "--preset",
    type=click.Choice(PRESETS),
    help="A bundled spec instead of --config; 'tiny' trains a small offline model in minutes on CPU.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one setting, e.g. --set training.learning_rate=1e-5 (repeatable).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where models, checkpoints, history and curves go (default: the spec's output_dir).",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimizer steps.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in the output dir.")
@click.option(
    "--mode",
    type=click.Choice(["bi", "doc-only"]),
    help="doc-only: queries are IDF-weighted tokens (inference-free), the model encodes documents.",
)
def train_command(
    config_file: Path | None,
    preset: str | None,
    overrides: tuple[str, ...],
    output_dir: Path | None,
    max_steps: int | None,
    resume: bool,
    mode: str | None,
) -> None:
    """Train a SPLADE encoder with the notebook's losses (self, synonym, margin, FLOPS).

    Writes best/ (highest validation MRR) and final/ models that
    sentence_transformers.SparseEncoder loads, checkpoints/ for --resume,
    training_history.json, training_curves.png and config.yaml. Runs data-parallel
    under `accelerate launch` or `torchrun` with the same arguments.

    \b
    Examples:
      ko-sparse train --preset tiny
      ko-sparse train --config configs/v21.3.yaml --set data.train=dataset/triplets
      accelerate launch -m ko_sparse train --config configs/v21.3.yaml
      torchrun --nproc-per-node 4 -m ko_sparse train --config configs/v21.3.yaml
    """
    if (config_file is None) == (preset is None):
        raise click.UsageError("give exactly one of --config FILE or --preset NAME")
    settings = list(overrides)
    if output_dir is not None:
        settings.append(f"output_dir={output_dir}")
    if max_steps is not None:
        settings.append(f"training.max_steps={max_steps}")
    if mode is not None:
        settings.append(f"model.mode={mode}")
    from ko_sparse.train.trainer import SpladeTrainer, TrainingInterrupted

    with user_errors():
        config = load_config(config_file or preset_path(preset), settings)
        trainer = SpladeTrainer(config)
        try:
            result = trainer.train(resume=resume)
        except TrainingInterrupted as interrupted:
            raise click.ClickException(str(interrupted)) from None
    if trainer.accelerator.is_main_process:
        click.echo(
            f"Done: {result.global_step} steps, best MRR {result.best_mrr:.4f}.\n"
            f"  best model:  {result.output_dir / 'best'}\n"
            f"  final model: {result.output_dir / 'final'}\n"
            f"  curves:      {result.output_dir / 'training_curves.png'}"
        )
