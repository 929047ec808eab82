"""Files shipped inside the package: the production tokenizer and the Korean data sets."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

RESOURCES = Path(str(files(__name__)))
TOKENIZER_DIR = RESOURCES / "tokenizers" / "ax-encoder-base"
PAIRS_DIR = RESOURCES / "data" / "pairs"
RETRIEVAL_DIR = RESOURCES / "data" / "retrieval"
JUDGED_SYNONYMS_FILE = RESOURCES / "data" / "judged-synonyms" / "sample.jsonl"
