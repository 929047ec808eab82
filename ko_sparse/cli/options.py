"""Options several commands share, declared once so that their names, types and defaults cannot drift."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

MIN_LENGTH = 8


def model_option(help: str, required: bool = False, multiple: bool = False, exists: bool = True) -> Callable:
    """``--model``: a model folder (``exists=False``: or a SparseEncoder id); the command gets ``model_path``
    (``models``, a tuple of paths, when ``multiple``)."""
    return click.option(
        "--model",
        "models" if multiple else "model_path",
        required=required,
        multiple=multiple,
        type=click.Path(exists=exists, file_okay=False, path_type=Path),
        help=help,
    )


LENGTH_OPTIONS = {
    "documents": (
        "--max-length",
        "Tokens kept of each document (default: the document length recorded with the model).",
    ),
    "queries": ("--query-length", "Tokens kept of each query (default: the query length recorded with the model)."),
}


def max_length_options(documents: bool = True, queries: bool = True) -> Callable:
    """``--max-length`` (documents) and ``--query-length``; the command gets ``max_length`` and
    ``query_length``, None unless given: the lengths recorded with the model apply."""
    wanted = [LENGTH_OPTIONS[side] for side, wanted in (("queries", queries), ("documents", documents)) if wanted]

    def decorate(command: Callable) -> Callable:
        for flag, help in wanted:
            command = click.option(flag, type=click.IntRange(min=MIN_LENGTH), help=help)(command)
        return command

    return decorate


def json_option(help: str) -> Callable:
    """``--json``; the command gets ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def output_option(help: str, required: bool = False) -> Callable:
    """``--output``: a folder; the command gets ``output_dir``."""
    return click.option(
        "--output", "output_dir", required=required, type=click.Path(file_okay=False, path_type=Path), help=help
    )
