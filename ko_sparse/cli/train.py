"""``ko-sparse train``."""

from __future__ import annotations

import os
from pathlib import Path

import click

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
    help="A bundled spec; 'tiny' trains a small offline model in minutes on CPU. With --config, the "
    "config's recipe at the preset's scale (the preset's keys win).",
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
    "--overwrite",
    is_flag=True,
    help="Start again in an output dir that holds an earlier run: its models, checkpoints and history are "
    "replaced (without it, a non-empty output dir is refused).",
)
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
    overwrite: bool,
    mode: str | None,
) -> None:
    """Train a SPLADE encoder on sentence-transformers' SparseEncoderTrainer.

    Recipes (loss.recipe): notebook (the v21.3 notebook's self, synonym, margin and FLOPS losses on
    synonym triplets; best model by synonym-ranking MRR) and retrieval (in-batch negatives ranking
    or teacher distillation on query/passage rows; best model by nDCG@10 on held-out queries).
    Writes best/ and final/ models that sentence_transformers.SparseEncoder loads, checkpoints/ for
    --resume (Ctrl-C saves one), training_history.json, training_curves.png and config.yaml. Runs
    data-parallel under `accelerate launch` or `torchrun` with the same arguments; any
    SparseEncoderTrainingArguments field can be set with --set training.trainer_args.NAME=VALUE.

    \b
    Examples:
      ko-sparse train --preset tiny
      ko-sparse train --config configs/v21.3.yaml --set data.train=dataset/triplets
      ko-sparse train --config configs/retrieval.yaml --preset tiny \\
          --set data.train=data/miracl/triplets --set data.eval_retrieval=data/miracl/eval
      accelerate launch -m ko_sparse train --config configs/v21.3.yaml
      torchrun --nproc-per-node 4 -m ko_sparse train --config configs/v21.3.yaml
    """
    if config_file is None and preset is None:
        raise click.UsageError("give --config FILE, --preset NAME, or both (a recipe at the preset's scale)")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    settings = list(overrides)
    if output_dir is not None:
        settings.append(f"output_dir={output_dir}")
    if max_steps is not None:
        settings.append(f"training.max_steps={max_steps}")
    if mode is not None:
        settings.append(f"model.mode={mode}")
    from ko_sparse.train.trainer import Training

    config = load_config(config_file, settings, preset=preset_path(preset) if preset else None)
    result = Training(config).train(resume=resume, overwrite=overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(
            f"Done: {result.global_step} steps, best {result.best_metric} {result.best_value:.4f}.\n"
            f"  best model:  {result.output_dir / 'best'}\n"
            f"  final model: {result.output_dir / 'final'}\n"
            f"  curves:      {result.output_dir / 'training_curves.png'}"
        )
