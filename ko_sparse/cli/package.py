"""``ko-sparse package``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ko_sparse.cli.options import max_length_options, output_option
from ko_sparse.usage import peak_resident_bytes


@click.command("package")
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@output_option("Folder for the zips, their ML-Commons configs, package.json and the model card.", required=True)
@click.option(
    "--mode",
    type=click.Choice(["bi", "doc-only"]),
    help="bi: the model encodes queries too. doc-only: also a SPARSE_TOKENIZE query model (idf.json). "
    "Default: what the model is (doc-only for models trained with --mode doc-only).",
)
@max_length_options()
@click.option(
    "--prune-ratio",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, max_open=True),
    help="Inside the model: drop weights below RATIO x the text's largest weight.",
)
@click.option(
    "--idf-corpus",
    type=click.Path(dir_okay=False, path_type=Path),
    help="doc-only: documents for the query IDF (.jsonl with 'text', or one document per line).",
)
@click.option("--name", help="Model name on the cluster (default: ko-sparse-<model folder>).")
@click.option(
    "--format",
    "model_format",
    type=click.Choice(["torchscript", "onnx"]),
    default="torchscript",
    show_default=True,
    help="Encoder model format: TorchScript (.pt, ML-Commons' PyTorch engine) or ONNX (.onnx, its ONNX "
    "Runtime engine; needs the [onnx] extra).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a previous package in --output (only files ko-sparse wrote there; others are never touched).",
)
def package_command(
    model_dir: Path,
    output_dir: Path,
    mode: str,
    max_length: int | None,
    query_length: int | None,
    prune_ratio: float,
    idf_corpus: Path | None,
    name: str | None,
    model_format: str,
    overwrite: bool,
) -> None:
    """Turn a trained model into OpenSearch ML-Commons sparse model files.

    Exports MODEL_DIR (a model folder, or a SparseEncoder's Hugging Face Hub id) with the signature ML-Commons calls
    (input_ids and attention_mask -> {"output": [B, vocab]}): a TorchScript trace, or with --format onnx an ONNX
    graph with dynamic batch and sequence axes run by ONNX Runtime. Checks that the exported and the eager model
    agree on Korean sentences at other batch sizes and lengths, and writes the flat zip (model .pt/.onnx +
    tokenizer.json), its model config JSON with the sha256, package.json and a model card. Documents (and a
    bi-encoder's queries) are truncated at the model's document length, a doc-only model's query tokenizer at its
    query length, unless --max-length / --query-length; package.json records both. Refuses to write when the
    verification fails, and into a folder that is not empty unless --overwrite (which replaces only the files of a
    previous package there).

    \b
    Examples:
      ko-sparse package outputs/tiny/best --output outputs/tiny/package
      ko-sparse package outputs/tiny/best --output outputs/tiny/package-onnx --format onnx
      ko-sparse package outputs/tiny/best --output pkg --mode doc-only --idf-corpus corpus.jsonl
      ko-sparse package outputs/tiny/best --output outputs/tiny/package --overwrite
    """
    from ko_sparse.export.package import package_model

    started = time.perf_counter()
    manifest, verification = package_model(
        model_dir,
        output_dir,
        mode,
        max_length,
        prune_ratio,
        idf_corpus,
        name or _default_name(model_dir),
        model_format,
        overwrite,
        query_length,
    )
    click.echo(verification.summary())
    click.echo(
        f"packaged in {time.perf_counter() - started:.1f} s, peak memory {peak_resident_bytes() / 1e9:.2f} GB "
        "(this process)"
    )
    for artifact in manifest.artifacts:
        click.echo(
            f"{artifact.function_name:<16} {output_dir / artifact.file}  {artifact.size:,} bytes"
            f"  sha256 {artifact.sha256}"
        )
    click.echo(f"next: ko-sparse register --host localhost:9200 --model {output_dir}")


def _default_name(model_dir: Path) -> str:
    """``outputs/tiny/best`` -> ``ko-sparse-tiny-best``."""
    resolved = model_dir.resolve()
    parts = [resolved.parent.name, resolved.name] if resolved.name in ("best", "final") else [resolved.name]
    return "ko-sparse-" + "-".join(parts)
