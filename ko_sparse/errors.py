"""Errors for input that name the file, row, setting or model at fault."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing input data; the message names the file, row or setting."""


class ModelLoadError(ValueError):
    """A base model or a saved model that cannot serve as a SPLADE encoder; the message names the setting."""
