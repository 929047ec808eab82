"""Rows of Hugging Face datasets (``id`` or ``id:config1,config2``), with errors that name the dataset.

Real loading code: it needs the Hub (or a local cache), which these machines cannot reach.
"""

from __future__ import annotations

from collections.abc import Iterator

from ko_sparse.errors import DataError


def parse_dataset_spec(spec: str) -> tuple[str, list[str | None]]:
    """``sean0042/KorMedMCQA:doctor,nurse`` -> (``sean0042/KorMedMCQA``, [``doctor``, ``nurse``])."""
    dataset_id, _, configs = spec.partition(":")
    return dataset_id, [c.strip() for c in configs.split(",") if c.strip()] or [None]


def load_hub_rows(spec: str, columns: tuple[str, ...] = (), split: str = "train") -> Iterator[dict]:
    from datasets import load_dataset

    dataset_id, configs = parse_dataset_spec(spec)
    for config in configs:
        try:
            rows = load_dataset(dataset_id, config, split=split)
        except Exception as error:  # datasets raises many types when the Hub is unreachable
            raise DataError(
                f"Hugging Face dataset {spec!r} could not be loaded ({error.__class__.__name__}: {error})"
            ) from error
        missing = [c for c in columns if c not in rows.column_names]
        if missing:
            raise DataError(f"{spec}: needs columns {missing} (has {rows.column_names})")
        yield from rows


def stream_hub_rows(spec: str, split: str = "train"):
    """One split of a Hugging Face dataset (``id``, ``id:config`` or a local dataset folder), streamed: rows
    are read as they are used, never all at once."""
    from datasets import load_dataset

    dataset_id, configs = parse_dataset_spec(spec)
    if len(configs) > 1:
        raise DataError(f"{spec}: give one config at a time (id:config)")
    try:
        return load_dataset(dataset_id, configs[0], split=split, streaming=True)
    except Exception as error:  # datasets raises many types when the Hub is unreachable
        raise DataError(
            f"Hugging Face dataset {spec!r} (split {split!r}) could not be loaded ({error.__class__.__name__}: {error})"
        ) from error
