"""What two sentences that mean the same exchange, as pairs of term/phrase units.

Two candidate generators, both over kiwipiepy morphemes (``MorphemeTokenizer.tagged``):

- ``aligned`` (default): an edit alignment of the two morpheme sequences (particles and endings
  included, they anchor the alignment), with ``difflib.SequenceMatcher``; each replaced span, reduced
  to the morphemes the retrieval tokenizer keeps, is exchanged for the span it replaces ("혈당이" |
  "당 수치가" gives 혈당 | 당 수치). Spans with the same number of morphemes and the same word classes
  are paired morpheme by morpheme (아들 태어나 | 아드님 낳 gives 아들 | 아드님 and 태어나 | 낳). Every two
  texts of a paraphrase group are aligned, not only the given pairs.
- ``differences`` (the first version, kept for comparison): every morpheme (and two-morpheme phrase)
  only one side has, crossed with every one only the other side has, for pairs that differ in at most
  ``max_difference`` morphemes on either side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from difflib import SequenceMatcher
from itertools import combinations, pairwise
from typing import NamedTuple

from ko_sparse.data.groups import Groups
from ko_sparse.data.pairs import Pair
from ko_sparse.text.morphemes import Morpheme, is_kept_tag

GENERATORS = ("aligned", "differences")
WORD_CLASSES = {
    "NNG": "noun",
    "NNP": "noun",
    "NP": "noun",
    "SL": "noun",
    "SH": "noun",
    "XR": "noun",
    "NR": "number",
    "SN": "number",
    "VV": "verb",
    "VA": "adjective",
    "MAG": "adverb",
    "MM": "determiner",
}  # every other kept tag (NNB, VX, MAJ, IC, ...) is "function"
DERIVING_SUFFIXES = {"XSV": "verb", "XSA": "adjective"}  # 사용+하다 is a verb, 적당+하다 an adjective

TaggedTokenize = Callable[[list[str]], list[list[Morpheme]]]


class Token(NamedTuple):
    form: str
    tag: str
    word_class: str


Unit = tuple[Token, ...]
Exchange = tuple[Unit, Unit]


def unit_text(unit: Unit) -> str:
    return " ".join(token.form for token in unit)


def unit_class(unit: Unit) -> str:
    """The word class of the unit's head (Korean is head-final): its last content morpheme."""
    return next((t.word_class for t in reversed(unit) if t.word_class != "function"), "function")


def tokens_in_context(morphemes: list[Morpheme]) -> list[Token]:
    """Each morpheme with its word class; a noun or root followed by a verb- or adjective-deriving suffix
    (사용+하다, 적당+하다) is a verb or an adjective."""
    tokens = []
    for i, (form, tag) in enumerate(morphemes):
        word_class = WORD_CLASSES.get(tag.split("-")[0], "function")
        following = morphemes[i + 1][1] if i + 1 < len(morphemes) else ""
        if word_class == "noun" and following in DERIVING_SUFFIXES:
            word_class = DERIVING_SUFFIXES[following]
        tokens.append(Token(form.replace(" ", ""), tag, word_class))  # a unit's morphemes are space-separated
    return tokens


def kept(tokens: list[Token]) -> Unit:
    """The tokens the retrieval tokenizer keeps (no particles, endings or punctuation)."""
    return tuple(t for t in tokens if is_kept_tag(t.tag))


def aligned_exchanges(source: list[Token], target: list[Token], max_length: int) -> set[Exchange]:
    """Units the edit alignment replaces one for the other (at most ``max_length`` morphemes a side), when
    neither side's morphemes occur in the other sentence (a moved word, as in "A랑 B 중" / "B랑 A 중", is
    not exchanged)."""
    matcher = SequenceMatcher(a=[t.form for t in source], b=[t.form for t in target], autojunk=False)
    source_forms, target_forms = {t.form for t in kept(source)}, {t.form for t in kept(target)}
    found = set()
    for operation, i1, i2, j1, j2 in matcher.get_opcodes():
        a, b = kept(source[i1:i2]), kept(target[j1:j2])
        if operation != "replace" or not a or not b or len(a) > max_length or len(b) > max_length:
            continue
        if any(t.form in target_forms for t in a) or any(t.form in source_forms for t in b):
            continue
        if len(a) == len(b) > 1 and [t.word_class for t in a] == [t.word_class for t in b]:
            found.update(((x,), (y,)) for x, y in zip(a, b, strict=True))
        else:
            found.add((a, b))
    return found


def differing_units(tokens: Unit, differing: set[str]) -> set[Unit]:
    """Differing morphemes, plus adjacent differing morphemes joined as a phrase."""
    singles = {(t,) for t in tokens if t.form in differing}
    return singles | {(a, b) for a, b in pairwise(tokens) if a.form in differing and b.form in differing}


def difference_exchanges(source: list[Token], target: list[Token], max_difference: int) -> set[Exchange]:
    """Every unit only the source has with every unit only the target has (the first generator)."""
    source, target = kept(source), kept(target)
    only_source = {t.form for t in source} - {t.form for t in target}
    only_target = {t.form for t in target} - {t.form for t in source}
    if not (0 < len(only_source) <= max_difference and 0 < len(only_target) <= max_difference):
        return set()
    targets = differing_units(target, only_target)
    return {(a, b) for a in differing_units(source, only_source) for b in targets}


def sentence_pairs(pairs: list[Pair], generator: str, max_group_size: int) -> Iterator[tuple[str, str, str]]:
    """(source, target, group) to align: for ``aligned``, every two texts of a paraphrase group of at most
    ``max_group_size`` texts (larger groups: their given pairs); for ``differences``, the given pairs."""
    groups = Groups()
    for pair in pairs:
        groups.join(pair.source, pair.target)
    members = groups.members()
    expanded = set()
    if generator == "aligned":
        for root, texts in sorted(members.items()):
            if len(texts) <= max_group_size:
                expanded.add(root)
                yield from ((a, b, root) for a, b in combinations(sorted(texts), 2))
    for pair in pairs:
        root = groups.find(pair.source)
        if root not in expanded:
            yield pair.source, pair.target, root
