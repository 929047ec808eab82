"""The judged synonym sample, and the precision and recall of the synonym filters measured on it.

The sample (``resources/data/judged-synonyms/``, guideline beside it) holds candidate pairs drawn at
random (seeded, stratified) from the candidates of both generators on the bundled pairs, before any
filter, each labelled synonym, related, unrelated or antonym by a Korean speaker. Each row carries its
stratum's weight (candidates in the stratum / rows drawn from it), so weighted counts estimate the whole
candidate set: precision is the weighted share of synonyms among the judged rows a pipeline keeps,
recall the weighted share of all judged synonyms that it keeps. The file is the ground truth: it is read,
never regenerated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ko_sparse.data.jsonl import read_jsonl
from ko_sparse.data.pairs import Pair
from ko_sparse.data.synonyms import (
    FilterReport,
    MiningThresholds,
    TermPair,
    apply_filters,
    cross_encoder_scores,
    filter_checks,
    mine_synonyms,
)
from ko_sparse.errors import DataError
from ko_sparse.resources import JUDGED_SYNONYMS_FILE
from ko_sparse.resources.lexicon import Lexicon

LABELS = ("synonym", "related", "unrelated", "antonym")
CANDIDATE_SETTINGS = ("generator", "max_length", "max_group_size", "max_difference")  # what the candidates depend on
# the first version of `data build`: every unshared morpheme crossed, filtered by count, PMI and information gain
FIRST_VERSION = MiningThresholds(
    generator="differences", filters=("min_count", "pmi", "information_gain"), min_count=2, min_pmi=2.0
)


@dataclass(frozen=True)
class Judged:
    source: str
    target: str
    label: str
    weight: float

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.target


@dataclass(frozen=True)
class Measure:
    """One filter or pipeline on the judged sample; ``kept`` counts what it keeps of all candidates."""

    name: str
    precision: float | None  # None when it keeps no judged row
    recall: float
    judged_kept: int
    kept: int | None


def read_judged(path: Path = JUDGED_SYNONYMS_FILE) -> list[Judged]:
    rows = []
    for number, record in enumerate(read_jsonl(path, required=("source", "target", "label")), start=1):
        if record["label"] not in LABELS:
            raise DataError(f"{path}:{number}: label {record['label']!r}: expected one of {', '.join(LABELS)}")
        key = tuple(sorted((record["source"], record["target"])))
        rows.append(Judged(key[0], key[1], record["label"], float(record.get("weight", 1.0))))
    return rows


def measure(name: str, kept: Iterable[TermPair], judged: list[Judged], count: bool = True) -> Measure:
    """Weighted precision and recall of keeping ``kept`` (``count``: whether ``kept`` is everything it keeps)."""
    kept = list(kept)
    keys = {p.key for p in kept}
    chosen = [row for row in judged if row.key in keys]
    weight = sum(row.weight for row in chosen)
    hits = sum(row.weight for row in chosen if row.label == "synonym")
    synonyms = sum(row.weight for row in judged if row.label == "synonym")
    return Measure(
        name,
        round(hits / weight, 4) if weight else None,
        round(hits / synonyms, 4) if synonyms else 0.0,
        len(chosen),
        len(kept) if count else None,
    )


def filter_measures(
    candidates: list[TermPair], thresholds: MiningThresholds, lexicon: Lexicon, judged: list[Judged]
) -> list[Measure]:
    """The generator's candidates unfiltered, each configured filter alone, and the pipeline without each."""
    checks = filter_checks(thresholds, lexicon)
    rows = [measure(f"{thresholds.generator} candidates, no filter", candidates, judged)]
    rows += [
        measure(f"{name} alone", (p for p in candidates if checks[name](p)), judged) for name in thresholds.filters
    ]
    for name in thresholds.filters:
        others = replace(thresholds, filters=tuple(other for other in thresholds.filters if other != name))
        rows.append(
            measure(f"pipeline without {name}", apply_filters(candidates, others, lexicon, FilterReport()), judged)
        )
    return rows


def judged_report(
    pairs: list[Pair],
    tokenize: Callable,
    candidates: list[TermPair],
    kept: list[TermPair],
    thresholds: MiningThresholds,
    lexicon: Lexicon,
    judged: list[Judged],
    cross_encoder: tuple[str, float] | None = None,
) -> list[Measure]:
    """Every row of ``data build --report``: the first version, each filter alone, the pipeline as configured
    and the default one (mined again from ``pairs`` when the configured generator differs)."""
    _, first, _ = mine_synonyms(pairs, tokenize, FIRST_VERSION, lexicon)
    rows = [measure("first version (differences; count, PMI, information gain)", first, judged)]
    rows += filter_measures(candidates, thresholds, lexicon, judged)
    if cross_encoder:
        model, threshold = cross_encoder
        judged_keys = {row.key for row in judged}
        scored = cross_encoder_scores([p for p in candidates if p.key in judged_keys], model)
        rows.append(measure("cross_encoder alone", [p for p in scored if p.cross_encoder >= threshold], judged, False))
    defaults = MiningThresholds()
    if replace(thresholds, min_cross_encoder=defaults.min_cross_encoder) != defaults or cross_encoder:
        rows.append(measure("pipeline (as configured)", kept, judged))
    if all(getattr(thresholds, name) == getattr(defaults, name) for name in CANDIDATE_SETTINGS):
        default_kept = apply_filters(candidates, defaults, lexicon, FilterReport())
    else:
        _, default_kept, _ = mine_synonyms(pairs, tokenize, defaults, lexicon)
    rows.append(measure("pipeline (defaults)", default_kept, judged))
    return rows


def format_report(rows: list[Measure], judged: list[Judged]) -> str:
    """The report as a plain-text table."""
    synonyms = sum(1 for row in judged if row.label == "synonym")
    lines = [
        f"judged sample: {len(judged)} candidate pairs, {synonyms} judged synonyms ({JUDGED_SYNONYMS_FILE.name});"
        " precision and recall are weighted by stratum",
        f"{'filter / pipeline':<58} {'precision':>9} {'recall':>7} {'judged kept':>11} {'kept':>7}",
    ]
    for row in rows:
        precision = "-" if row.precision is None else f"{row.precision:.3f}"
        kept = "-" if row.kept is None else f"{row.kept:,}"
        lines.append(f"{row.name:<58} {precision:>9} {row.recall:>7.3f} {row.judged_kept:>11} {kept:>7}")
    return "\n".join(lines)
