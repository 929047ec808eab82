"""The bundled paraKQC paraphrase sets (see ``data/pairs/NOTICE.md``): Korean sentences that data
building, the tiny models' warm-up and the benchmarks all read."""

from __future__ import annotations

from pathlib import Path

from ko_sparse.resources import PAIRS_DIR

PARAKQC_FILE = PAIRS_DIR / "paraKQC" / "paraKQC_v1.txt"
PARAKQC_SET_SIZE = 10


def read_parakqc_sets(path: Path = PARAKQC_FILE) -> list[list[str]]:
    """paraKQC's 1,000 paraphrase sets: ten consecutive lines (codes, codes, sentence) form a set."""
    sentences = [line.split("\t")[2].strip() for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [sentences[i : i + PARAKQC_SET_SIZE] for i in range(0, len(sentences), PARAKQC_SET_SIZE)]
