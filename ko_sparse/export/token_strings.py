"""Checks on the token strings ML-Commons decodes, and the tokenizer.json it loads.

ML-Commons turns each vocabulary id into a string with a single-id decode that skips special tokens
(``tokenizer.decode([id], true)`` in DJL); those strings are the keys of ``_predict`` responses,
``rank_features`` fields and ``idf.json``. Two ids decoding to one string would silently merge.
"""

from __future__ import annotations

import json
from collections import defaultdict

from transformers import PreTrainedTokenizerBase

from ko_sparse.errors import KoSparseError
from ko_sparse.model.splade import special_token_ids
from ko_sparse.model.token_strings import token_strings


class TokenCollisionError(KoSparseError):
    """Several non-special ids decode to the same string."""


def colliding_strings(tokenizer: PreTrainedTokenizerBase) -> dict[str, list[int]]:
    """Strings shared by two or more non-special ids, with those ids."""
    special = set(special_token_ids(tokenizer))
    ids_of: dict[str, list[int]] = defaultdict(list)
    for token_id, text in enumerate(token_strings(tokenizer)):
        if token_id not in special:
            ids_of[text].append(token_id)
    return {text: ids for text, ids in ids_of.items() if len(ids) > 1}


def check_no_collisions(tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise when the single-id decode maps two vocabulary ids to one key."""
    collisions = colliding_strings(tokenizer)
    if collisions:
        examples = ", ".join(f"{text!r}: {ids}" for text, ids in list(collisions.items())[:5])
        raise TokenCollisionError(
            f"{len(collisions)} token strings are shared by several ids under ML-Commons' single-id decode "
            f"({examples}); their weights would merge in OpenSearch. Use a WordPiece vocabulary or "
            "query with token ids (sparse_embedding_format=token_id, OpenSearch 3.2+)."
        )


def tokenizer_json(tokenizer: PreTrainedTokenizerBase, max_length: int) -> str:
    """The fast tokenizer's JSON with truncation at ``max_length`` and no padding, as DJL loads it."""
    config = json.loads(tokenizer.backend_tokenizer.to_str())
    config["truncation"] = {
        "direction": "Right",
        "max_length": max_length,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    config["padding"] = None
    return json.dumps(config, ensure_ascii=False)
