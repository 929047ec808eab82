"""``ko-sparse expand``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ko_sparse.cli.options import json_option, max_length_options, model_option


@click.command("expand")
@click.argument("texts", nargs=-1, required=True)
@model_option("A trained model directory (e.g. outputs/tiny/best) or a SparseEncoder id.", required=True, exists=False)
@max_length_options(queries=False)
@click.option(
    "--top-k",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many tokens to show per text.",
)
@json_option("Print JSON instead of a table.")
def expand_command(texts: tuple[str, ...], model_path: Path, max_length: int | None, top_k: int, as_json: bool) -> None:
    """Show the tokens and weights each TEXT expands to, strongest first.

    Tokens marked '+' are expansions: the text itself does not contain them. Each text is truncated at the
    model's document length (--max-length).

    \b
    Example:
      ko-sparse expand "당뇨병 치료" --model outputs/tiny/best --top-k 10
    """
    blank = [number for number, text in enumerate(texts, start=1) if not text.strip()]
    if blank:
        which = ", ".join(f"#{number}" for number in blank)
        raise click.UsageError(f'TEXT {which} is empty: give the text to expand, e.g. ko-sparse expand "당뇨병 치료"')
    from ko_sparse.model.doc_only import load_model
    from ko_sparse.model.expansion import expand

    encoder = load_model(model_path, max_length, setting="--model").encoder  # doc-only: the document side
    expansions = expand(encoder, list(texts), top_k)
    if as_json:
        payload = [
            {
                "text": text,
                "tokens": [{"token": t.token, "weight": round(t.weight, 4), "in_text": t.in_text} for t in tokens],
            }
            for text, tokens in zip(texts, expansions, strict=False)
        ]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for text, tokens in zip(texts, expansions, strict=False):
        click.echo(f"{text}  ({len(tokens)} tokens shown)")
        for rank, token in enumerate(tokens, start=1):
            marker = " " if token.in_text else "+"
            click.echo(f"  {rank:>3}. {marker} {token.token:<16} {token.weight:.4f}")
