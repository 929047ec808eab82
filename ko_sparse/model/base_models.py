"""Base models by name: Hugging Face ids and paths pass through; ``tiny:HIDDENxLAYERS`` and
``random:ax-encoder-base`` are built offline (once, cached) with the production vocabulary.

``random:ax-encoder-base`` is ``skt/A.X-Encoder-base``'s exact architecture (its configuration is bundled:
22 layers, hidden 768, local/global attention, 50,000 ids, the same special tokens, ~150 M parameters)
with random weights. It measures cost and scale (memory, time, file sizes, what a cluster holds), not
quality. Its MLM decoder bias is calibrated like the tiny models', so it activates a few hundred ids
per text rather than the whole vocabulary, as a trained SPLADE model does.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

from ko_sparse.model.tiny import TINY_PREFIX, TinyModelSpec, _calibrate_decoder_bias, build_tiny_mlm
from ko_sparse.paths import build_once
from ko_sparse.resources import TOKENIZER_DIR

RANDOM_PREFIX = "random:"
RANDOM_MODELS = {"ax-encoder-base": TOKENIZER_DIR / "config.json"}
ACTIVE_IDS = 200
SEED = 0


def build_random_base(name: str, output_dir: Path) -> Path:
    """Write the named architecture with random weights (seeded) and the production tokenizer."""
    if name not in RANDOM_MODELS:
        raise ValueError(
            f"{RANDOM_PREFIX}{name}: unknown (available: {', '.join(RANDOM_PREFIX + n for n in RANDOM_MODELS)})"
        )
    settings = json.loads(RANDOM_MODELS[name].read_text(encoding="utf-8"))
    settings.pop("transformers_version", None)
    config = ModernBertConfig(**settings)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    with tqdm(total=3, desc=f"Building {RANDOM_PREFIX}{name} (once)", unit="stage") as progress:
        torch.manual_seed(SEED)
        model = ModernBertForMaskedLM(config)
        progress.update()
        _calibrate_decoder_bias(model, tokenizer, ACTIVE_IDS)
        progress.update()
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        progress.update()
    return output_dir


def resolve_base_model(name: str, cache_dir: str | Path) -> str:
    """A local directory for ``tiny:`` and ``random:`` names (built on first use, once even when several
    processes ask at the same time); other names as given."""
    if name.startswith(TINY_PREFIX):
        spec = TinyModelSpec.parse(name)
        return str(
            build_once(Path(cache_dir) / spec.cache_name, lambda folder: build_tiny_mlm(spec, folder), "config.json")
        )
    if not name.startswith(RANDOM_PREFIX):
        return name
    architecture = name.removeprefix(RANDOM_PREFIX)
    target = Path(cache_dir) / f"random-{architecture}-active{ACTIVE_IDS}-seed{SEED}"
    return str(build_once(target, lambda folder: build_random_base(architecture, folder), "config.json"))
