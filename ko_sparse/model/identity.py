"""What identifies a model's vectors: a hash of its saved files, and a hash of its vocabulary's token strings."""

from __future__ import annotations

import hashlib
from pathlib import Path

MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")  # weights, configs, vocabularies


def model_fingerprint(path: str | Path) -> str:
    """sha256 over the weight, configuration and vocabulary files of a saved model (relative name and
    bytes, in name order); the model card and other notes do not count."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES):
        digest.update(str(file.relative_to(root)).encode("utf-8") + b"\0")
        with file.open("rb") as data:
            for block in iter(lambda data=data: data.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def vocabulary_fingerprint(strings: list[str]) -> str:
    """sha256 of the token strings by id: two models can share an index only if this matches."""
    return hashlib.sha256("\n".join(strings).encode("utf-8")).hexdigest()
