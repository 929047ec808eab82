"""Korean morphological tokens for BM25 and synonym mining, with kiwipiepy.

kiwipiepy ships its model on PyPI (no system dictionary, unlike mecab-ko), runs on every platform
and analyses a thousand passages in seconds. Particles (J*), endings (E*), suffix-like copulas and
punctuation are dropped, so "당뇨병에", "당뇨병은" and "당뇨병" all index as "당뇨병": this is what
lets BM25 match across Korean josa. ``tagged`` keeps every morpheme with its part-of-speech tag, for
aligning two sentences morpheme by morpheme.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

DROPPED_TAG_PREFIXES = ("J", "E", "S", "VCP", "VCN", "XS", "XP")
KEPT_SYMBOLS = ("SL", "SN", "SH")  # foreign words, numbers, hanja

Morpheme = tuple[str, str]  # (lower-cased form, kiwipiepy tag)


def is_kept_tag(tag: str) -> bool:
    """Whether ``MorphemeTokenizer`` keeps a morpheme with this tag."""
    return tag.startswith(KEPT_SYMBOLS) or not tag.startswith(DROPPED_TAG_PREFIXES)


class MorphemeTokenizer:
    """Content morphemes of each text, lower-cased."""

    name = "kiwipiepy (content morphemes: nouns, verb/adjective stems, roots, foreign words, numbers)"

    @cached_property
    def _kiwi(self):
        from kiwipiepy import Kiwi

        return Kiwi()

    def __call__(self, texts: Iterable[str]) -> list[list[str]]:
        return [[form for form, tag in morphemes if is_kept_tag(tag)] for morphemes in self.tagged(texts)]

    def tagged(self, texts: Iterable[str]) -> list[list[Morpheme]]:
        """Every morpheme of each text, particles and endings included, as (lower-cased form, tag)."""
        texts = list(texts)
        return [[(t.form.lower(), t.tag) for t in tokens] for tokens in self._kiwi.tokenize(texts)] if texts else []
