"""Token strings as ML-Commons sees them: the keys of ``_predict`` responses, ``rank_features``
fields and ``idf.json``.

ML-Commons turns each vocabulary id into a string with a single-id decode that skips special tokens
(``tokenizer.decode([id], true)`` in DJL, which wraps the Rust ``tokenizers`` library used here).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase


def token_strings(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The string ML-Commons uses for each id (special tokens decode to ``""``)."""
    backend = tokenizer.backend_tokenizer
    return [backend.decode([token_id], skip_special_tokens=True) for token_id in range(len(tokenizer))]
