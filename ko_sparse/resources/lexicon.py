"""The small curated Korean word lists that synonym filtering reads (see ``data/lexicon/NOTICE.md``).

- ``antonyms.tsv``: lemma pairs of opposite meaning (켜 / 끄, 열 / 닫, 시작 / 끝, ...).
- ``negations.tsv``: morphemes that negate or forbid (안/MAG, 않/VX, 말/VX, 없/VA, 금지/NNG, ...).
- ``variants.tsv``: a short form and the form it shortens, when one spells inside the other (메일 / 이메일).

Each is ``form<TAB>form`` (negations: ``form<TAB>tag``), one a line; ``#`` starts a comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ko_sparse.errors import DataError
from ko_sparse.resources import RESOURCES

LEXICON_DIR = RESOURCES / "data" / "lexicon"


@dataclass(frozen=True)
class Lexicon:
    antonyms: frozenset[frozenset[str]]
    negations: frozenset[tuple[str, str]]
    variants: frozenset[frozenset[str]]


def read_rows(path: Path) -> list[tuple[str, str]]:
    """The two tab-separated fields of every non-comment line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            fields = [field.strip() for field in line.split("\t")]
            if len(fields) != 2 or not all(fields):
                raise DataError(f"{path}:{number}: expected two tab-separated fields")
            rows.append((fields[0], fields[1]))
    return rows


def read_lexicon(folder: Path = LEXICON_DIR) -> Lexicon:
    return Lexicon(
        antonyms=frozenset(frozenset(row) for row in read_rows(folder / "antonyms.tsv")),
        negations=frozenset(read_rows(folder / "negations.tsv")),
        variants=frozenset(frozenset(row) for row in read_rows(folder / "variants.tsv")),
    )
