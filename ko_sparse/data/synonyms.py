"""Term- and phrase-level synonym candidates from aligned sentence pairs, filtered by PMI and
information gain (and optionally a cross-encoder).

Two sentences that mean the same differ in a few morphemes; those differences are aligned as
candidates ("혈당" in one, "당 수치" in the other). Counting over all pairs, a candidate is kept when
it recurs (``min_count``), when its pointwise mutual information says the two terms are exchanged
more often than chance (``min_pmi``), and when the mutual information of their occurrence indicators
(the information gain one gives about the other) is high enough (``min_information_gain``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from itertools import pairwise

from ko_sparse.data.pairs import Pair

Tokenize = Callable[[list[str]], list[list[str]]]


@dataclass(frozen=True)
class MiningThresholds:
    max_difference: int = 3  # pairs that differ in more morphemes on either side are not aligned
    min_count: int = 2
    min_pmi: float = 2.0
    min_information_gain: float = 1e-4
    min_cross_encoder: float = 0.5


@dataclass(frozen=True)
class TermPair:
    """A kept candidate and the counts behind it (over ``pairs`` aligned sentence pairs)."""

    source: str
    target: str
    count: int
    source_count: int
    target_count: int
    pairs: int
    pmi: float
    information_gain: float
    cross_encoder: float | None = None

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class FilterReport:
    aligned_pairs: int = 0
    candidates: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    kept: int = 0


def phrases(tokens: list[str], within: set[str] | None = None) -> set[str]:
    """Adjacent morphemes joined as two-morpheme phrases (only those both in ``within`` when given)."""
    return {f"{a} {b}" for a, b in pairwise(tokens) if within is None or (a in within and b in within)}


def units(tokens: list[str], differing: set[str]) -> set[str]:
    """Differing morphemes, plus adjacent differing morphemes joined as a phrase."""
    return differing | phrases(tokens, differing)


def aligned_differences(pairs: list[Pair], tokenize: Tokenize, max_difference: int) -> list[tuple[set, set]]:
    """For each pair, the units only its source has and the units only its target has."""
    sources = tokenize([p.source for p in pairs])
    targets = tokenize([p.target for p in pairs])
    differences = []
    for source, target in zip(sources, targets, strict=True):
        only_source, only_target = set(source) - set(target), set(target) - set(source)
        if 0 < len(only_source) <= max_difference and 0 < len(only_target) <= max_difference:
            differences.append((units(source, only_source), units(target, only_target)))
    return differences


def mutual_information(joint: int, first: int, second: int, total: int) -> float:
    """Mutual information (bits) of two binary indicators from their counts over ``total`` events."""
    cells = [
        (joint, first, second),
        (first - joint, first, total - second),
        (second - joint, total - first, second),
        (total - first - second + joint, total - first, total - second),
    ]
    return sum((n / total) * math.log2(n * total / (a * b)) for n, a, b in cells if n > 0 and a > 0 and b > 0)


def mine_term_pairs(
    differences: Iterable[tuple[set, set]], thresholds: MiningThresholds
) -> tuple[list[TermPair], FilterReport]:
    """Aligned candidates that pass the count, PMI and information-gain filters, strongest first."""
    differences = list(differences)
    total = len(differences)
    joint: Counter = Counter()
    occurrences: Counter = Counter()
    for only_source, only_target in differences:
        occurrences.update(only_source | only_target)
        joint.update(tuple(sorted((a, b))) for a in only_source for b in only_target if a != b)
    report = FilterReport(aligned_pairs=total, candidates=len(joint), removed={})
    kept = []
    for (a, b), count in joint.items():
        if count < thresholds.min_count:
            report.removed["min_count"] = report.removed.get("min_count", 0) + 1
            continue
        pmi = math.log2(count * total / (occurrences[a] * occurrences[b]))
        if pmi < thresholds.min_pmi:
            report.removed["pmi"] = report.removed.get("pmi", 0) + 1
            continue
        gain = mutual_information(count, occurrences[a], occurrences[b], total)
        if gain < thresholds.min_information_gain:
            report.removed["information_gain"] = report.removed.get("information_gain", 0) + 1
            continue
        kept.append(TermPair(a, b, count, occurrences[a], occurrences[b], total, round(pmi, 4), round(gain, 6)))
    kept.sort(key=lambda p: (-p.count, -p.pmi, p.source, p.target))
    report.kept = len(kept)
    return kept, report


def cross_encoder_filter(
    pairs: list[TermPair], model_name: str, threshold: float, report: FilterReport
) -> list[TermPair]:
    """Keep pairs the cross-encoder scores at least ``threshold`` (needs sentence-transformers)."""
    if not pairs:
        return pairs
    from sentence_transformers import CrossEncoder

    scores = CrossEncoder(model_name, device="cpu").predict([(p.source, p.target) for p in pairs], batch_size=64)
    scored = [
        TermPair(**{**asdict(p), "cross_encoder": round(float(s), 4)}) for p, s in zip(pairs, scores, strict=True)
    ]
    kept = [p for p in scored if p.cross_encoder >= threshold]
    report.removed["cross_encoder"] = len(pairs) - len(kept)
    report.kept = len(kept)
    return kept
