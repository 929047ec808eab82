"""Korean morphological tokens for BM25, with kiwipiepy.

kiwipiepy ships its model on PyPI (no system dictionary, unlike mecab-ko), runs on every platform
and analyses a thousand passages in seconds. Particles (J*), endings (E*), suffix-like copulas and
punctuation are dropped, so "당뇨병에", "당뇨병은" and "당뇨병" all index as "당뇨병": this is what
lets BM25 match across Korean josa.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

DROPPED_TAG_PREFIXES = ("J", "E", "S", "VCP", "VCN", "XS", "XP")
KEPT_SYMBOLS = ("SL", "SN", "SH")  # foreign words, numbers, hanja


class MorphemeTokenizer:
    """Content morphemes of each text, lower-cased."""

    name = "kiwipiepy (content morphemes: nouns, verb/adjective stems, roots, foreign words, numbers)"

    @cached_property
    def _kiwi(self):
        from kiwipiepy import Kiwi

        return Kiwi()

    def __call__(self, texts: Iterable[str]) -> list[list[str]]:
        texts = list(texts)
        return [self._keep(tokens) for tokens in self._kiwi.tokenize(texts)] if texts else []

    @staticmethod
    def _keep(tokens) -> list[str]:
        return [
            token.form.lower()
            for token in tokens
            if token.tag in KEPT_SYMBOLS or not token.tag.startswith(DROPPED_TAG_PREFIXES)
        ]
