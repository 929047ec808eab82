"""Two-phase search for an exact (``rank_features``) index: neural-search's ``neural_sparse_two_phase_processor``.

The processor splits each ``neural_sparse`` query in two: phase one searches with the query's strongest tokens
(those ``prune_type``/``prune_ratio`` keep), phase two rescores the top ``k x expansion_rate`` hits (at most
``max_window_size``) with the remaining tokens, so every returned hit gets its exact dot product; only a
document that phase one misses is lost. ko-sparse puts the processor in a search pipeline named after the
index and makes it the index's ``index.search.default_pipeline``; a request with ``search_pipeline=_none``
bypasses it.

What the 3.6.0 node does (measured, where the docs say less): it accepts ``prune_type`` max_ratio (the default),
alpha_mass (``prune_ratio`` in [0, 1)), top_k (a positive whole number) and abs_value (non-negative); it
refuses ``expansion_rate`` below 1 and ``max_window_size`` below 50, but silently keeps a parameter it does not
know (so this module refuses one); it prunes ``query_tokens`` as well as ``query_text``, and a ``neural_sparse``
inside a ``bool``, but not one inside a ``hybrid`` query (there every token is searched). A SEISMIC
(``sparse_vector``) index is approximate already and has its own ``top_n``: two-phase is refused there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

from ko_sparse.errors import InputError

PROCESSOR = "neural_sparse_two_phase_processor"
PRUNE_TYPES = ("max_ratio", "alpha_mass", "top_k", "abs_value")
BYPASS = "_none"  # the search_pipeline value that turns an index's default pipeline off for one request
MIN_WINDOW = 50


def pipeline_name(index: str) -> str:
    """The two-phase search pipeline ``ko-sparse index --two-phase`` makes for ``index``."""
    return f"{index}-two-phase"


@dataclass(frozen=True)
class TwoPhaseParameters:
    """The processor's ``two_phase_parameter`` (neural-search's defaults)."""

    prune_type: str = "max_ratio"
    prune_ratio: float = 0.4
    expansion_rate: float = 5.0
    max_window_size: int = 10_000

    @classmethod
    def parse(cls, settings: Iterable[str]) -> TwoPhaseParameters:
        """``NAME=VALUE`` settings (``--two-phase-parameter prune_ratio=0.3``); a bad one is an :class:`InputError`."""
        kinds = {f.name: type(f.default) for f in fields(cls)}
        values: dict = {}
        for setting in settings:
            name, _, text = setting.partition("=")
            if name not in kinds:
                raise InputError(
                    f"--two-phase-parameter {setting!r}: expected NAME=VALUE with NAME one of {', '.join(kinds)}"
                )
            try:
                values[name] = kinds[name](text)
            except ValueError:
                kind = "a whole number" if kinds[name] is int else "a number"
                raise InputError(f"--two-phase-parameter {setting!r}: {name} takes {kind}") from None
        parameters = cls(**values)
        problem = parameters.problem()
        if problem:
            raise InputError(f"--two-phase-parameter: {problem}")
        return parameters

    def problem(self) -> str | None:
        """Why the node would refuse these parameters (None: it accepts them), in its own ranges."""
        kind, ratio = self.prune_type, self.prune_ratio
        if kind not in PRUNE_TYPES:
            return f"prune_type {kind!r}: expected one of {', '.join(PRUNE_TYPES)}"
        if kind in ("max_ratio", "alpha_mass") and not 0 <= ratio < 1:
            return f"prune_ratio {ratio} for prune_type {kind}: expected a value in [0, 1)"
        if kind == "top_k" and (ratio < 1 or ratio != int(ratio)):
            return f"prune_ratio {ratio} for prune_type top_k: expected a whole number >= 1 (tokens kept)"
        if kind == "abs_value" and ratio < 0:
            return f"prune_ratio {ratio} for prune_type abs_value: expected a value >= 0"
        if self.expansion_rate < 1:
            return f"expansion_rate {self.expansion_rate}: expected a value >= 1 (the window is k x expansion_rate)"
        if self.max_window_size < MIN_WINDOW:
            return f"max_window_size {self.max_window_size}: expected a whole number >= {MIN_WINDOW}"
        return None

    def pipeline(self) -> dict:
        """The search pipeline body with the processor and these parameters."""
        return {
            "description": "ko-sparse: two-phase neural sparse search (strongest query tokens, then rescoring)",
            "request_processors": [{PROCESSOR: {"enabled": True, "two_phase_parameter": asdict(self)}}],
        }

    def describe(self) -> str:
        """``prune_type=max_ratio, prune_ratio=0.4, ...`` for messages and summaries."""
        return ", ".join(f"{name}={value}" for name, value in asdict(self).items())
