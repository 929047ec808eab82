"""Every error ko-sparse raises for a reason the user can act on, in one hierarchy.

The CLI prints a :class:`KoSparseError` as one line, ``Error: <message>``, and exits with its
``exit_code``: 2 for bad input (:class:`InputError`, like a usage error), 1 for the rest. Each module
keeps its own subclass where callers tell them apart (``ResumeError``, ``PackagingError`` ...).
"""

from __future__ import annotations


class KoSparseError(Exception):
    """A step that cannot go on; the message says why and what to do."""

    exit_code = 1


class InputError(KoSparseError, ValueError):
    """Bad input: a file, row, setting, config or model; the message names it. Also a ``ValueError``."""

    exit_code = 2


class DataError(InputError):
    """Bad or missing input data; the message names the file, row or setting."""


class ConfigError(InputError):
    """A config file, key or value that cannot be used; the message names it."""


class ModelLoadError(InputError):
    """A base model or a saved model that cannot serve as a SPLADE encoder; the message names the setting."""


class ClusterError(KoSparseError):
    """The cluster refused or lacks something (registration, index mismatch, bulk failures, resume state)."""


class Interrupted(KoSparseError):
    """A run stopped before its end (Ctrl-C, the node going away); what it saved lets it resume."""
