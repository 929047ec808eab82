"""Turn ko-sparse's input errors into one-line CLI errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from ko_sparse.data.errors import DataError
from ko_sparse.model.splade import ModelLoadError
from ko_sparse.train.config import ConfigError

USER_ERRORS = (ConfigError, DataError, ModelLoadError)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report configuration, data and model errors as ``Error: ...`` with exit code 2."""
    try:
        yield
    except USER_ERRORS as error:
        raise click.UsageError(str(error)) from error
