"""``ko-sparse data build``: Korean pairs -> filtered synonym pairs -> difficulty-balanced triplets.

1. Sentence pairs from the bundled sets and the user's files; duplicates and self-pairs dropped.
2. Term/phrase synonym candidates: what two paraphrases exchange, by edit alignment of their morphemes
   (``alignment``), filtered by count, PMI, information gain, part of speech, negation, antonyms,
   numbers and substrings (``synonyms``; optional cross-encoder and minimum corpus frequency); the kept
   pairs' precision on the judged sample (``judged``) goes to ``stats.json``.
3. Groups: texts connected by a pair are one group (their known positives). Whole groups go to
   train or validation, so no anchor or positive appears in both.
4. Negatives for every (anchor, positive): BM25 over the pool (sentences: the pair sentences and the
   corpus; terms: all mined terms, by syllables), fused with the sparse model's ranking when given,
   bucketed by rank and balanced to the requested proportions.
5. Output: ``triplets/`` (DatasetDict: anchor, positive, negative, difficulty), ``eval_pairs.jsonl``
   (validation pairs for ``ko-sparse train``), ``filtered_synonym_pairs.jsonl`` (every kept term pair
   with its counts and an example pair) and ``stats.json`` (with ``--report``: each filter's precision and
   recall on the judged sample).
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm

from ko_sparse.data.corpus import read_documents
from ko_sparse.data.groups import Groups
from ko_sparse.data.jsonl import write_jsonl
from ko_sparse.data.judged import Measure, judged_report, measure, read_judged
from ko_sparse.data.negatives import (
    DIFFICULTIES,
    DifficultyBalancer,
    NegativeSampler,
    Ranker,
    bm25_ranker,
    difficulty_shares,
    fused_ranker,
)
from ko_sparse.data.pairs import BUNDLED_SOURCES, Pair, bundled_pairs, user_pairs
from ko_sparse.data.synonyms import MiningThresholds, TermPair, cross_encoder_filter, mine_synonyms
from ko_sparse.errors import DataError
from ko_sparse.resources.lexicon import read_lexicon
from ko_sparse.text.morphemes import MorphemeTokenizer

TRIPLETS_DIR = "triplets"
EVAL_PAIRS_FILE = "eval_pairs.jsonl"
SYNONYMS_FILE = "filtered_synonym_pairs.jsonl"
STATS_FILE = "stats.json"


@dataclass
class BuildConfig:
    output_dir: Path
    sources: tuple[str, ...] = BUNDLED_SOURCES
    pairs: tuple[str, ...] = ()
    corpus: tuple[str, ...] = ()
    cross_encoder: str | None = None
    model: str | None = None
    negatives_per_anchor: int = 1
    proportions: dict[str, float] = field(default_factory=lambda: {"hard": 0.4, "medium": 0.4, "easy": 0.2})
    validation_fraction: float = 0.05
    max_pairs_per_source: int | None = None
    min_sts_score: float = 4.0
    min_corpus_frequency: int = 0
    thresholds: MiningThresholds = field(default_factory=MiningThresholds)
    report: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        unknown = set(self.proportions) - set(DIFFICULTIES)
        if unknown or not self.proportions or min(self.proportions.values()) < 0:
            raise DataError(f"--proportions {self.proportions}: expected non-negative shares of {DIFFICULTIES}")
        if not 0 < self.validation_fraction < 1:
            raise DataError(f"--validation-fraction {self.validation_fraction}: expected 0 < fraction < 1")


def collect_pairs(config: BuildConfig, rng: random.Random) -> tuple[list[Pair], Counter]:
    """Pairs per origin (capped with the seed), without self-pairs and duplicates."""
    by_origin: dict[str, list[Pair]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    sources = [bundled_pairs(config.sources, config.min_sts_score), *(user_pairs(p) for p in config.pairs)]
    for reader in sources:
        for pair in reader:
            key = tuple(sorted((pair.source, pair.target)))
            if pair.source != pair.target and key not in seen:
                seen.add(key)
                by_origin[pair.origin].append(pair)
    pairs = []
    for origin in sorted(by_origin):
        chosen = by_origin[origin]
        if config.max_pairs_per_source is not None and len(chosen) > config.max_pairs_per_source:
            chosen = rng.sample(chosen, config.max_pairs_per_source)
        pairs.extend(chosen)
    if not pairs:
        raise DataError("no pairs: give --source and/or --pairs")
    return pairs, Counter(p.origin for p in pairs)


def split_groups(groups: dict[str, set[str]], fraction: float, rng: random.Random) -> set[str]:
    """Group roots chosen for validation (at least one)."""
    roots = sorted(groups)
    rng.shuffle(roots)
    return set(roots[: max(1, round(len(roots) * fraction))])


def triplet_rows(
    examples: list[tuple[str, str]],
    pool: list[str],
    ranker: Ranker,
    group_of: dict[str, set[str]],
    config: BuildConfig,
    balancer: DifficultyBalancer,
    rng: random.Random,
    desc: str,
) -> list[dict[str, str]]:
    """``negatives_per_anchor`` rows per (anchor, positive), difficulties balanced over the split."""
    sampler = NegativeSampler(pool, rng)
    rows = []
    batch = 512
    for start in tqdm(range(0, len(examples), batch), desc=desc, unit="batch"):
        chunk = examples[start : start + batch]
        rankings = ranker([anchor for anchor, _ in chunk])
        for (anchor, positive), ranking in zip(chunk, rankings, strict=True):
            excluded = group_of[anchor] | {anchor, positive}
            used: set[int] = set()
            for _ in range(config.negatives_per_anchor):
                buckets = sampler.buckets(ranking, excluded, used)
                if not buckets:
                    break
                difficulty = balancer.choose(list(buckets))
                index = rng.choice(buckets[difficulty])
                balancer.record(difficulty)
                used.add(index)
                rows.append({"anchor": anchor, "positive": positive, "negative": pool[index], "difficulty": difficulty})
    return rows


def syllables(texts: list[str]) -> list[list[str]]:
    """Hangul syllables (and other characters) of short terms, for ranking term negatives."""
    return [[ch for ch in text if not ch.isspace()] for text in texts]


def build_dataset(config: BuildConfig, model_ranker: Callable[[list[str]], Ranker] | None = None) -> dict:
    """Write the outputs; ``model_ranker(pool)`` (from ``--model``) adds a sparse model's ranking of sentence
    negatives, fused with BM25's."""
    rng = random.Random(config.seed)
    tokenize = MorphemeTokenizer()
    pairs, per_origin = collect_pairs(config, rng)
    print(f"{len(pairs):,} sentence pairs: {dict(per_origin)}")

    lexicon, judged = read_lexicon(), read_judged()
    candidates, terms, report = mine_synonyms(pairs, tokenize.tagged, config.thresholds, lexicon)
    corpus = [doc for location in config.corpus for doc in read_documents(location)]
    if config.min_corpus_frequency and corpus:
        terms = corpus_frequency_filter(terms, corpus, tokenize, config.min_corpus_frequency, report)
    if config.cross_encoder:
        terms = cross_encoder_filter(terms, config.cross_encoder, config.thresholds.min_cross_encoder, report)
    report.judged = asdict(measure("pipeline", terms, judged))
    print(f"synonym candidates: {report.candidates:,}; removed {report.removed}; kept {report.kept:,}")
    judged_rows = None
    if config.report:
        encoder = (config.cross_encoder, config.thresholds.min_cross_encoder) if config.cross_encoder else None
        judged_rows = judged_report(
            pairs, tokenize.tagged, candidates, terms, config.thresholds, lexicon, judged, encoder
        )

    sentence_groups, term_groups = Groups(), Groups()
    for pair in pairs:
        sentence_groups.join(pair.source, pair.target)
    for term in terms:
        term_groups.join(term.source, term.target)
    output = {}
    # one balancer per split; terms first, so sentence anchors (deep rankings) make up for the terms' few candidates
    balancers = {split: DifficultyBalancer(config.proportions) for split in ("train", "validation")}
    for kind, groups, examples, pool, tokenizer in (
        (
            "term",
            term_groups,
            [(t.source, t.target) for t in terms] + [(t.target, t.source) for t in terms],
            sorted({x for t in terms for x in (t.source, t.target)}),
            syllables,
        ),
        (
            "sentence",
            sentence_groups,
            [(p.source, p.target) for p in pairs],
            sorted({t for p in pairs for t in (p.source, p.target)} | set(corpus)),
            tokenize,
        ),
    ):
        if not examples:
            continue
        members = groups.members()
        group_of = {text: members[groups.find(text)] for text in groups.parent}
        validation_roots = split_groups(members, config.validation_fraction, rng)
        ranker = bm25_ranker(pool, tokenizer)
        if model_ranker is not None and kind == "sentence":
            ranker = fused_ranker([ranker, model_ranker(pool)])
        for split in ("train", "validation"):
            chosen = [(a, p) for a, p in examples if (groups.find(a) in validation_roots) == (split == "validation")]
            output.setdefault(split, []).extend(
                triplet_rows(
                    chosen, pool, ranker, group_of, config, balancers[split], rng, f"{kind} negatives ({split})"
                )
            )
        output.setdefault("eval_pairs", []).extend(
            {"source": a, "target": p} for a, p in examples if groups.find(a) in validation_roots
        )
    return write_outputs(config, output, terms, report, per_origin, judged_rows)


def corpus_frequency_filter(terms: list[TermPair], corpus: list[str], tokenize, minimum: int, report) -> list[TermPair]:
    """Drop pairs with a term seen in fewer than ``minimum`` corpus documents (typos, one-offs)."""
    longest = max((len(t.source.split(" ")) for t in terms), default=1)
    longest = max([longest, *(len(t.target.split(" ")) for t in terms)])
    frequency: Counter = Counter()
    for tokens in tokenize(corpus):
        frequency.update(
            {" ".join(tokens[i : i + n]) for n in range(1, longest + 1) for i in range(len(tokens) - n + 1)}
        )
    kept = [t for t in terms if frequency[t.source] >= minimum and frequency[t.target] >= minimum]
    report.removed["corpus_frequency"] = len(terms) - len(kept)
    report.kept = len(kept)
    return kept


def write_outputs(
    config: BuildConfig,
    output: dict,
    terms: list[TermPair],
    report,
    per_origin: Counter,
    judged_rows: list[Measure] | None = None,
) -> dict:
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {name: Dataset.from_list(output.get(name, [])) for name in ("train", "validation")}
    for name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"the {name} split came out empty; give more pairs or change --validation-fraction")
    DatasetDict(splits).save_to_disk(str(folder / TRIPLETS_DIR))
    write_jsonl(folder / EVAL_PAIRS_FILE, output["eval_pairs"])
    write_jsonl(folder / SYNONYMS_FILE, [t.to_dict() for t in terms])
    stats = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "pairs_per_source": dict(per_origin),
        "synonym_filtering": asdict(report),
        "synonym_report": [asdict(row) for row in judged_rows] if judged_rows is not None else None,
        "splits": {
            name: {
                "rows": len(split),
                "difficulty": dict(Counter(split["difficulty"])),
                "difficulty_share": difficulty_shares(split["difficulty"]),
            }
            for name, split in splits.items()
        },
        "eval_pairs": len(output["eval_pairs"]),
        "examples": {
            "triplets": splits["train"].select(range(min(5, len(splits["train"])))).to_list(),
            "synonyms": [t.to_dict() for t in terms[:10]],
        },
    }
    (folder / STATS_FILE).write_text(json.dumps(stats, indent=2, ensure_ascii=False), encoding="utf-8")
    return stats
