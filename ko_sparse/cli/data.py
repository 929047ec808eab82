"""``ko-sparse data``."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ko_sparse.cli.errors import user_errors
from ko_sparse.data.pairs import BUNDLED_SOURCES


def parse_proportions(text: str) -> dict[str, float]:
    """``hard=0.4,medium=0.4,easy=0.2``."""
    shares = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{part!r}: expected NAME=SHARE", param_hint="--proportions") from None
    return shares


def parse_filters(text: str | None) -> tuple[str, ...]:
    """``min_count,pmi,...``; None: the default filters."""
    from ko_sparse.data.synonyms import DEFAULT_FILTERS

    return DEFAULT_FILTERS if text is None else tuple(name.strip() for name in text.split(",") if name.strip())


@click.group("data")
def data_group() -> None:
    """Build training data from Korean pairs."""


@data_group.command("build")
@click.option(
    "--output",
    "output_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for triplets/, eval_pairs.jsonl, filtered_synonym_pairs.jsonl and stats.json.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(BUNDLED_SOURCES),
    help="Bundled pair sets to use (repeatable; default: all).",
)
@click.option("--no-bundled", is_flag=True, help="Use only --pairs, none of the bundled sets.")
@click.option("--pairs", multiple=True, help="Your pairs: .jsonl/.csv with source,target, or a HF dataset id.")
@click.option(
    "--corpus",
    multiple=True,
    help="Documents for negatives and term frequencies: .jsonl (text), a text "
    "file (a line each) or a HF dataset id with configs (sean0042/KorMedMCQA:doctor,nurse,pharm,dentist).",
)
@click.option(
    "--candidates",
    "generator",
    default="aligned",
    show_default=True,
    type=click.Choice(["aligned", "differences"]),
    help="Synonym candidates: what an edit alignment of two paraphrases exchanges, or (the first version) "
    "every unshared morpheme of one crossed with every one of the other.",
)
@click.option(
    "--synonym-filters",
    help="Comma-separated synonym filters to run, in order (default: min_count, pmi, information_gain, "
    "part_of_speech, negation, antonym, number; also min_groups, content, substring; see the README).",
)
@click.option(
    "--report",
    is_flag=True,
    help="Print the precision and recall of each synonym filter and of the pipeline on the judged sample.",
)
@click.option("--cross-encoder", help="Also filter synonym pairs with this cross-encoder (id or path).")
@click.option(
    "--model",
    type=click.Path(exists=True, file_okay=False),
    help="Also mine sentence negatives with this sparse model (fused with BM25).",
)
@click.option("--negatives-per-anchor", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--proportions",
    default="hard=0.4,medium=0.4,easy=0.2",
    show_default=True,
    help="Shares of hard (rank 1-10), medium (11-50) and easy (below 50) negatives.",
)
@click.option(
    "--validation-fraction",
    default=0.05,
    show_default=True,
    type=float,
    help="Share of pair groups held out for validation.",
)
@click.option("--max-pairs-per-source", type=click.IntRange(min=1), help="Sample at most this many pairs per source.")
@click.option("--min-sts-score", default=4.0, show_default=True, type=float, help="KorSTS pairs scored at least this.")
@click.option(
    "--min-count", default=4, show_default=True, type=int, help="Synonym filter: aligned at least this often."
)
@click.option("--min-pmi", default=6.0, show_default=True, type=float, help="Synonym filter: PMI (bits) at least.")
@click.option(
    "--min-information-gain",
    default=1e-4,
    show_default=True,
    type=float,
    help="Synonym filter: mutual information (bits) at least.",
)
@click.option("--min-cross-encoder", default=0.5, show_default=True, type=float, help="Cross-encoder score at least.")
@click.option(
    "--min-corpus-frequency",
    default=0,
    show_default=True,
    type=int,
    help="Synonym filter: each term in at least this many --corpus documents (0: off).",
)
@click.option("--seed", default=42, show_default=True, type=int)
def build_command(
    output_dir,
    sources,
    no_bundled,
    pairs,
    corpus,
    generator,
    synonym_filters,
    report,
    cross_encoder,
    model,
    negatives_per_anchor,
    proportions,
    validation_fraction,
    max_pairs_per_source,
    min_sts_score,
    min_count,
    min_pmi,
    min_information_gain,
    min_cross_encoder,
    min_corpus_frequency,
    seed,
) -> None:
    """Build filtered, difficulty-balanced triplets for `ko-sparse train`.

    Sentence pairs (bundled paraKQC, KorSTS >= --min-sts-score, KorNLI entailment, Question_pair
    duplicates, and --pairs) give term/phrase synonym candidates: what an edit alignment of two
    paraphrases' morphemes exchanges. Candidates are filtered by count, PMI, information gain, part of
    speech, negation flips, listed antonyms, numbers and substrings (and a cross-encoder when given);
    --report prints each filter's precision and recall on the bundled judged sample. Every (anchor,
    positive) gets BM25-mined negatives bucketed by rank into hard/medium/easy and balanced to
    --proportions; groups of connected texts go wholly to train or validation. Deterministic for a seed.

    \b
    Examples:
      ko-sparse data build --output data/ko-triplets
      ko-sparse data build --output data/ko-triplets --report
      ko-sparse data build --output data/med --pairs my_pairs.jsonl \\
          --corpus sean0042/KorMedMCQA:doctor,nurse,pharm,dentist
      ko-sparse train --preset tiny --set data.train=data/ko-triplets/triplets \\
          --set data.eval_pairs=data/ko-triplets/eval_pairs.jsonl
    """
    from ko_sparse.data.build import BuildConfig, build_dataset
    from ko_sparse.data.synonyms import MiningThresholds

    with user_errors():
        config = BuildConfig(
            output_dir=output_dir,
            sources=() if no_bundled else (sources or BUNDLED_SOURCES),
            pairs=pairs,
            corpus=corpus,
            cross_encoder=cross_encoder,
            model=model,
            negatives_per_anchor=negatives_per_anchor,
            proportions=parse_proportions(proportions),
            validation_fraction=validation_fraction,
            max_pairs_per_source=max_pairs_per_source,
            min_sts_score=min_sts_score,
            min_corpus_frequency=min_corpus_frequency,
            report=report,
            thresholds=MiningThresholds(
                generator=generator,
                filters=parse_filters(synonym_filters),
                min_count=min_count,
                min_pmi=min_pmi,
                min_information_gain=min_information_gain,
                min_cross_encoder=min_cross_encoder,
            ),
            seed=seed,
        )
        model_ranker = None
        if model:
            from ko_sparse.model.ranking import sparse_ranker

            model_ranker = functools.partial(sparse_ranker, model)
        stats = build_dataset(config, model_ranker)
    for name, split in stats["splits"].items():
        click.echo(f"{name}: {split['rows']:,} triplets, difficulty {split['difficulty']}")
    filtering = stats["synonym_filtering"]
    click.echo(f"synonym pairs kept: {filtering['kept']:,} (removed: {filtering['removed']})")
    judged = filtering["judged"]
    if judged["precision"] is not None:
        click.echo(
            f"precision on the judged sample: {judged['precision']:.3f} ({judged['judged_kept']} judged pairs kept)"
        )
    if report:
        from ko_sparse.data.judged import Measure, format_report, read_judged

        click.echo(format_report([Measure(**row) for row in stats["synonym_report"]], read_judged()))
    click.echo(f"written to {output_dir}")
