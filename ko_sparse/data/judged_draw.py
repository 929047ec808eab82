"""``python -m ko_sparse.data.judged_draw OUTPUT``: draw the synonym candidates to judge (run once; labelled by hand).

The judged sample (``ko_sparse/resources/data/judged-synonyms/``) was drawn with this script: both candidate
generators (``aligned`` and ``differences``) run over the bundled pairs with the default settings, and a
seeded, stratified random draw from the union of their candidates, before any filter. Each row records
which generators produce it, its stratum and its weight (candidates in the stratum / rows drawn from it),
so that precision and recall estimated on the sample hold for the whole candidate set. Rows are written
unlabelled (``label`` empty): a person fills each label by reading the pair and its example sentences.
The bundled sample was drawn before ``aligned`` skipped moved words (see its GUIDELINE.md), so running
this now draws from a smaller aligned candidate set.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from ko_sparse.data.build import BuildConfig, collect_pairs
from ko_sparse.data.synonyms import MiningThresholds, TermPair, mine_synonyms
from ko_sparse.resources.lexicon import read_lexicon
from ko_sparse.text.morphemes import MorphemeTokenizer

SEED = 19
# stratum: (description, rows drawn)
STRATA = {
    "aligned_recurring": ("aligned, exchanged in 2+ sentence pairs", 360),
    "aligned_once": ("aligned, exchanged once", 80),
    "differences_recurring": ("differences only, in 2+ sentence pairs", 140),
    "differences_once": ("differences only, once", 60),
}


def stratum(key: tuple[str, str], aligned: dict, differences: dict) -> str:
    if key in aligned:
        return "aligned_recurring" if aligned[key].count >= 2 else "aligned_once"
    return "differences_recurring" if differences[key].count >= 2 else "differences_once"


def row(key: tuple[str, str], name: str, weight: float, aligned: dict, differences: dict) -> dict:
    found: TermPair = aligned.get(key) or differences[key]
    return {
        "source": key[0],
        "target": key[1],
        "label": "",
        "note": "",
        "stratum": name,
        "weight": round(weight, 4),
        "generators": [
            g for g, candidates in (("aligned", aligned), ("differences", differences)) if key in candidates
        ],
        "example": list(found.example),
    }


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit(__doc__)
    pairs, _ = collect_pairs(BuildConfig(output_dir=Path(argv[0]).parent), random.Random(42))
    tokenize, lexicon = MorphemeTokenizer(), read_lexicon()
    found = {}
    for generator in ("aligned", "differences"):
        candidates, _, _ = mine_synonyms(pairs, tokenize.tagged, MiningThresholds(generator=generator), lexicon)
        found[generator] = {p.key: p for p in candidates}
    members: dict[str, list] = {name: [] for name in STRATA}
    for key in sorted(set(found["aligned"]) | set(found["differences"])):
        members[stratum(key, found["aligned"], found["differences"])].append(key)
    rng = random.Random(SEED)
    rows = []
    for name, (_, size) in STRATA.items():
        drawn = rng.sample(members[name], size)
        rows += [row(k, name, len(members[name]) / size, found["aligned"], found["differences"]) for k in drawn]
        print(f"{name}: {size} of {len(members[name]):,}", file=sys.stderr)
    rng.shuffle(rows)
    Path(argv[0]).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
