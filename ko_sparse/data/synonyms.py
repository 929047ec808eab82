"""Term- and phrase-level synonym candidates from sentences that mean the same, and the filters that
keep the real synonyms among them.

Candidates come from ``alignment`` (what two paraphrases exchange). Counting over all aligned
sentence pairs gives each candidate its evidence: how often it is exchanged (``count``), in how many
paraphrase groups (``groups``), its pointwise mutual information (are the two exchanged more often
than chance) and the mutual information of their occurrence indicators (the information gain one
gives about the other). The filters (``FILTERS``) each keep a candidate or not; ``mine_synonyms``
runs the configured ones in order and counts what each removed. Their precision and recall are
measured on the judged sample (``judged``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from ko_sparse.data.alignment import (
    Exchange,
    TaggedTokenize,
    Unit,
    aligned_exchanges,
    difference_exchanges,
    sentence_pairs,
    tokens_in_context,
    unit_class,
    unit_text,
)
from ko_sparse.data.pairs import Pair
from ko_sparse.errors import DataError
from ko_sparse.resources.lexicon import Lexicon

FILTERS = (
    "min_count",
    "min_groups",
    "pmi",
    "information_gain",
    "part_of_speech",
    "content",
    "negation",
    "antonym",
    "number",
    "substring",
)
# chosen on the judged sample (``data build --report``): substring removes more synonyms (잊 | 잊어버리,
# 겨울 | 겨울철) than noise; min_groups and content (implied by part_of_speech) change nothing
DEFAULT_FILTERS = ("min_count", "pmi", "information_gain", "part_of_speech", "negation", "antonym", "number")


@dataclass(frozen=True)
class MiningThresholds:
    generator: str = "aligned"
    filters: tuple[str, ...] = DEFAULT_FILTERS
    max_length: int = 3  # aligned: longer exchanged spans (in kept morphemes) are not candidates
    max_group_size: int = 20  # aligned: larger paraphrase groups align only their given pairs
    max_difference: int = 3  # differences: pairs that differ in more morphemes on either side are not aligned
    min_count: int = 4
    min_groups: int = 1
    min_pmi: float = 6.0
    min_information_gain: float = 1e-4
    min_cross_encoder: float = 0.5

    def __post_init__(self) -> None:
        unknown = set(self.filters) - set(FILTERS)
        if unknown:
            raise DataError(f"--synonym-filters: unknown {sorted(unknown)} (known: {', '.join(FILTERS)})")


@dataclass(frozen=True)
class TermPair:
    """A candidate and the evidence behind it (over ``pairs`` aligned sentence pairs)."""

    source: str
    target: str
    count: int
    groups: int
    source_count: int
    target_count: int
    pairs: int
    pmi: float
    information_gain: float
    source_tags: str
    target_tags: str
    source_class: str
    target_class: str
    example: tuple[str, str]
    cross_encoder: float | None = None

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.target


@dataclass
class FilterReport:
    aligned_pairs: int = 0
    candidates: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    judged: dict | None = None  # precision and recall of the kept pairs on the judged sample


@dataclass(frozen=True)
class Aligned:
    """The exchanges found in one aligned sentence pair, its paraphrase group and the pair itself."""

    exchanges: frozenset[Exchange]
    group: str
    example: tuple[str, str]


def align(pairs: list[Pair], tokenize: TaggedTokenize, thresholds: MiningThresholds) -> list[Aligned]:
    """Every sentence pair the generator aligns, with what it exchanges (pairs that exchange nothing dropped)."""
    if thresholds.generator not in ("aligned", "differences"):
        raise DataError(f"--candidates {thresholds.generator!r}: expected aligned or differences")
    chosen = list(sentence_pairs(pairs, thresholds.generator, thresholds.max_group_size))
    texts = sorted({text for source, target, _ in chosen for text in (source, target)})
    tokens = dict(zip(texts, (tokens_in_context(m) for m in tokenize(texts)), strict=True))
    aligned = []
    for source, target, group in tqdm(chosen, desc=f"aligning ({thresholds.generator})", unit="pair"):
        if thresholds.generator == "aligned":
            exchanges = aligned_exchanges(tokens[source], tokens[target], thresholds.max_length)
        else:
            exchanges = difference_exchanges(tokens[source], tokens[target], thresholds.max_difference)
        exchanges = {(a, b) for a, b in exchanges if unit_text(a) != unit_text(b)}
        if exchanges:
            aligned.append(Aligned(frozenset(exchanges), group, (source, target)))
    return aligned


def mutual_information(joint: int, first: int, second: int, total: int) -> float:
    """Mutual information (bits) of two binary indicators from their counts over ``total`` events."""
    cells = [
        (joint, first, second),
        (first - joint, first, total - second),
        (second - joint, total - first, second),
        (total - first - second + joint, total - first, total - second),
    ]
    return sum((n / total) * math.log2(n * total / (a * b)) for n, a, b in cells if n > 0 and a > 0 and b > 0)


def count_candidates(aligned: Iterable[Aligned]) -> list[TermPair]:
    """Every exchanged (unit, unit), by text, with its counts, PMI, information gain and commonest tags."""
    aligned = list(aligned)
    total = len(aligned)
    joint: Counter = Counter()
    occurrences: Counter = Counter()
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    examples: dict[tuple[str, str], tuple[str, str]] = {}
    shapes: dict[str, Counter] = defaultdict(Counter)
    for found in aligned:
        units: set[Unit] = {unit for exchange in found.exchanges for unit in exchange}
        occurrences.update({unit_text(unit) for unit in units})
        for unit in units:
            shapes[unit_text(unit)][(" ".join(t.tag for t in unit), unit_class(unit))] += 1
        keys = {tuple(sorted((unit_text(a), unit_text(b)))) for a, b in found.exchanges}
        joint.update(keys)
        for key in keys:
            groups[key].add(found.group)
            examples.setdefault(key, found.example)
    candidates = []
    for (a, b), count in joint.items():
        (a_tags, a_class), (b_tags, b_class) = shapes[a].most_common(1)[0][0], shapes[b].most_common(1)[0][0]
        pmi = math.log2(count * total / (occurrences[a] * occurrences[b]))
        gain = mutual_information(count, occurrences[a], occurrences[b], total)
        candidates.append(
            TermPair(
                a,
                b,
                count,
                len(groups[(a, b)]),
                occurrences[a],
                occurrences[b],
                total,
                round(pmi, 4),
                round(gain, 6),
                a_tags,
                b_tags,
                a_class,
                b_class,
                examples[(a, b)],
            )
        )
    candidates.sort(key=lambda p: (-p.count, -p.pmi, p.source, p.target))
    return candidates


def morphemes(text: str, tags: str) -> list[tuple[str, str]]:
    """(form, tag without kiwipiepy's irregular-conjugation mark) of each morpheme of a unit."""
    return [(form, tag.split("-")[0]) for form, tag in zip(text.split(" "), tags.split(" "), strict=True)]


def negated(text: str, tags: str, lexicon: Lexicon) -> bool:
    """Whether the unit holds an odd number of negating morphemes (켜지 말 / 끄지 않 ... count one each)."""
    return sum(m in lexicon.negations for m in morphemes(text, tags)) % 2 == 1


def antonymous(pair: TermPair, lexicon: Lexicon) -> bool:
    """Whether a morpheme of one side and one of the other are listed antonyms."""
    return any(frozenset((a, b)) in lexicon.antonyms for a in pair.source.split(" ") for b in pair.target.split(" "))


def numeric(pair: TermPair) -> bool:
    """Whether either side holds a number (Arabic or Sino-Korean numerals: 3, 삼, 삼십)."""
    return any(tag in ("SN", "NR") for tags in (pair.source_tags, pair.target_tags) for tag in tags.split(" "))


def nested(pair: TermPair, lexicon: Lexicon) -> bool:
    """Whether one side spells inside the other (삼 / 삼십, 말 / 말씀) and they are not a spacing variant
    (지 메일 / 지메일) or a listed short form (메일 / 이메일)."""
    a, b = pair.source.replace(" ", ""), pair.target.replace(" ", "")
    if a == b or frozenset((pair.source, pair.target)) in lexicon.variants:
        return False
    return a in b or b in a


def filter_checks(thresholds: MiningThresholds, lexicon: Lexicon) -> dict[str, Callable[[TermPair], bool]]:
    """Each filter as a test a candidate passes (True: kept)."""
    return {
        "min_count": lambda p: p.count >= thresholds.min_count,
        "min_groups": lambda p: p.groups >= thresholds.min_groups,
        "pmi": lambda p: p.pmi >= thresholds.min_pmi,
        "information_gain": lambda p: p.information_gain >= thresholds.min_information_gain,
        "part_of_speech": lambda p: p.source_class == p.target_class,
        "content": lambda p: (p.source_class == "function") == (p.target_class == "function"),
        "negation": lambda p: negated(p.source, p.source_tags, lexicon) == negated(p.target, p.target_tags, lexicon),
        "antonym": lambda p: not antonymous(p, lexicon),
        "number": lambda p: not numeric(p),
        "substring": lambda p: not nested(p, lexicon),
    }


def apply_filters(
    candidates: list[TermPair], thresholds: MiningThresholds, lexicon: Lexicon, report: FilterReport
) -> list[TermPair]:
    """The candidates every configured filter keeps; ``report.removed`` counts what each one removed, in order."""
    checks = filter_checks(thresholds, lexicon)
    kept = candidates
    for name in thresholds.filters:
        passing = [p for p in kept if checks[name](p)]
        if len(passing) < len(kept):
            report.removed[name] = report.removed.get(name, 0) + len(kept) - len(passing)
        kept = passing
    report.kept = len(kept)
    return kept


def mine_synonyms(
    pairs: list[Pair], tokenize: TaggedTokenize, thresholds: MiningThresholds, lexicon: Lexicon
) -> tuple[list[TermPair], list[TermPair], FilterReport]:
    """(every candidate, the kept ones, the filter report) for sentence pairs that mean the same."""
    aligned = align(pairs, tokenize, thresholds)
    candidates = count_candidates(aligned)
    report = FilterReport(aligned_pairs=len(aligned), candidates=len(candidates))
    return candidates, apply_filters(candidates, thresholds, lexicon, report), report


def cross_encoder_scores(pairs: list[TermPair], model_name: str) -> list[TermPair]:
    """The pairs with their cross-encoder score (needs sentence-transformers)."""
    if not pairs:
        return pairs
    from sentence_transformers import CrossEncoder

    scores = CrossEncoder(model_name, device="cpu").predict([(p.source, p.target) for p in pairs], batch_size=64)
    return [TermPair(**{**asdict(p), "cross_encoder": round(float(s), 4)}) for p, s in zip(pairs, scores, strict=True)]


def cross_encoder_filter(
    pairs: list[TermPair], model_name: str, threshold: float, report: FilterReport
) -> list[TermPair]:
    """Keep pairs the cross-encoder scores at least ``threshold``."""
    kept = [p for p in cross_encoder_scores(pairs, model_name) if p.cross_encoder >= threshold]
    report.removed["cross_encoder"] = len(pairs) - len(kept)
    report.kept = len(kept)
    return kept
