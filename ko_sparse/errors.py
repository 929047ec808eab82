"""Errors for input data that name the file, row and setting at fault."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing input data; the message names the file, row or setting."""
