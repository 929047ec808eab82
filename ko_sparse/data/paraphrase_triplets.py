"""A small built-in triplet set from paraKQC, used by the offline ``tiny`` preset.

Paraphrase sets are split into train and validation by set, so no paraphrase of a validation anchor
is trained on. Anchor and positive come from one set; the negative is a sentence of another set
(difficulty ``random``). ``ko-sparse data build`` makes the mined, difficulty-balanced version.
"""

from __future__ import annotations

import random
from pathlib import Path

from datasets import Dataset, DatasetDict

from ko_sparse.data.jsonl import write_jsonl
from ko_sparse.paths import build_once
from ko_sparse.resources.parakqc import read_parakqc_sets

BUILTIN_PREFIX = "builtin:"
BUILD_VERSION = 3  # bump when the built-in set changes, so cached copies are rebuilt
TRIPLETS_DIR = "triplets"
EVAL_PAIRS_FILE = "eval_pairs.jsonl"


def build_paraphrase_triplets(output_dir: str | Path, seed: int = 42, validation_sets: int = 200) -> Path:
    """Write ``triplets/`` (DatasetDict) and ``eval_pairs.jsonl`` under ``output_dir``."""
    output_dir = Path(output_dir)
    rng = random.Random(seed)
    sets = read_parakqc_sets()
    rng.shuffle(sets)
    validation, train = sets[:validation_sets], sets[validation_sets:]
    splits = DatasetDict(
        {
            "train": Dataset.from_list(_triplets(train, rng)),
            "validation": Dataset.from_list(_triplets(validation, rng)),
        }
    )
    splits.save_to_disk(str(output_dir / TRIPLETS_DIR))
    write_jsonl(output_dir / EVAL_PAIRS_FILE, _least_overlapping_pairs(validation))
    return output_dir


def _least_overlapping_pairs(sets: list[list[str]]) -> list[dict[str, str]]:
    """From each set, the two paraphrases that share the fewest words (Jaccard over words).

    One pair per set keeps exactly one true target per anchor among the candidates, and lexical
    overlap alone cannot rank it first, so the evaluation measures what the model learned.
    """
    pairs = []
    for group in sets:
        words = [set(sentence.split()) for sentence in group]
        _, i, j = min(
            (len(words[i] & words[j]) / len(words[i] | words[j]), i, j)
            for i in range(len(group))
            for j in range(len(group))
            if i != j
        )
        pairs.append({"source": group[i], "target": group[j]})
    return pairs


def _triplets(sets: list[list[str]], rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for index, group in enumerate(sets):
        for position, anchor in enumerate(group):
            positive = group[(position + 1 + rng.randrange(len(group) - 1)) % len(group)]
            other = (index + 1 + rng.randrange(len(sets) - 1)) % len(sets)
            negative = rng.choice(sets[other])
            rows.append({"anchor": anchor, "positive": positive, "negative": negative, "difficulty": "random"})
    return rows


def resolve_builtin(name: str, cache_dir: str | Path, seed: int) -> tuple[Path, Path]:
    """``builtin:parakqc`` -> (triplets dir, eval pairs file), built once into ``cache_dir``."""
    kind = name.removeprefix(BUILTIN_PREFIX)
    if kind != "parakqc":
        raise ValueError(f"data.train={name!r}: unknown built-in data set (available: builtin:parakqc)")
    target = Path(cache_dir) / f"parakqc-triplets-v{BUILD_VERSION}-seed{seed}"
    build_once(target, lambda folder: build_paraphrase_triplets(folder, seed=seed), EVAL_PAIRS_FILE)
    return target / TRIPLETS_DIR, target / EVAL_PAIRS_FILE
