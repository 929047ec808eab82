"""Small random-initialised ModernBERT masked LMs with the production vocabulary.

They stand in for ``skt/A.X-Encoder-base`` where the Hub cannot be reached (tests, the ``tiny``
preset): same tokenizer, same architecture family, a few layers and a small hidden size.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

from ko_sparse.model.splade import special_token_ids, vocabulary_parameters
from ko_sparse.resources import TOKENIZER_DIR
from ko_sparse.resources.parakqc import read_parakqc_sets

TINY_PREFIX = "tiny:"
CALIBRATION_SETS = 8


@dataclass(frozen=True)
class TinyModelSpec:
    """Size of a random ModernBERT; ``tiny:64x2`` means hidden size 64, 2 layers.

    A pretrained MLM predicts the tokens it is given; SPLADE training builds on that (a token can
    only gain weight where its logit is already positive). The random model learns it in
    ``identity_steps`` steps of reproducing its input (about a minute on 2 cores, once: the result is
    cached), on bundled Korean sentences and, for ``random_share`` of each batch, on random sequences
    of ids drawn from the whole vocabulary, with the vocabulary's rows held fixed. Then the MLM decoder
    bias is calibrated so that the model activates about ``initial_active_ids`` ids per sentence, as a
    pretrained MLM does, instead of nearly all 50,000.
    """

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 512
    initial_active_ids: int = 200
    identity_steps: int = 150
    random_share: float = 0.5
    seed: int = 0

    @classmethod
    def parse(cls, name: str) -> TinyModelSpec:
        """Read ``tiny:HIDDENxLAYERS`` (or plain ``tiny:``) into a spec."""
        size = name.removeprefix(TINY_PREFIX)
        if not size:
            return cls()
        try:
            hidden, layers = (int(part) for part in size.lower().split("x"))
        except ValueError as error:
            raise ValueError(f"{name!r}: expected tiny:HIDDENxLAYERS, e.g. tiny:64x2") from error
        return cls(hidden_size=hidden, num_layers=layers)

    @property
    def name(self) -> str:
        return f"{TINY_PREFIX}{self.hidden_size}x{self.num_layers}"

    @property
    def cache_name(self) -> str:
        """A folder name that changes whenever the built model would."""
        return (
            f"tiny-{self.hidden_size}x{self.num_layers}-identity{self.identity_steps}"
            f"-random{round(100 * self.random_share)}-fixedrows-active{self.initial_active_ids}-seed{self.seed}"
        )


def build_tiny_mlm(spec: TinyModelSpec, output_dir: str | Path) -> Path:
    """Write a random ModernBertForMaskedLM and the production tokenizer to ``output_dir``."""
    output_dir = Path(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=2 * spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions,
        global_attn_every_n_layers=1,
        local_attention=spec.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=0,
        eos_token_id=1,
        cls_token_id=0,
        sep_token_id=1,
    )
    torch.manual_seed(spec.seed)
    model = ModernBertForMaskedLM(config)
    _learn_identity(model, tokenizer, spec)
    _calibrate_decoder_bias(model, tokenizer, spec.initial_active_ids)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def _learn_identity(
    model: ModernBertForMaskedLM, tokenizer, spec: TinyModelSpec, batch_size: int = 32, length: int = 32
) -> None:
    """Train the MLM to predict each input token at its own position (cross-entropy, no masking).

    The vocabulary's rows (embeddings, tied to the decoder, and the decoder bias) stay fixed and only the
    layers learn, to pass any row through: the identity then holds for all 50,000 ids. Trained per id,
    the rows of the ids the bundled sentences never contain (most of them, 당뇨병 among them) were pushed
    away from every hidden state by the softmax, so such an id could not weigh itself and a document full
    of them activated nearly the whole vocabulary. Random id sequences add the ids the sentences lack.
    """
    sentences = [sentence for group in read_parakqc_sets() for sentence in group]
    random.Random(spec.seed).shuffle(sentences)
    generator = torch.Generator().manual_seed(spec.seed)
    vocabulary = torch.tensor(sorted(set(range(len(tokenizer))) - set(special_token_ids(tokenizer))))
    random_rows = round(batch_size * spec.random_share)
    sentence_rows = batch_size - random_rows
    vocabulary_rows = vocabulary_parameters(model)
    for parameter in vocabulary_rows:
        parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for step in tqdm(range(spec.identity_steps), desc="Preparing the tiny base model (once, then cached)", unit="step"):
        start = (step * sentence_rows) % len(sentences)
        features = tokenizer(
            sentences[start : start + sentence_rows],
            padding="max_length",
            truncation=True,
            max_length=length,
            return_tensors="pt",
        )
        random_ids = vocabulary[torch.randint(len(vocabulary), (random_rows, length), generator=generator)]
        random_ids[:, 0], random_ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
        input_ids = torch.cat([features["input_ids"], random_ids])
        attention_mask = torch.cat([features["attention_mask"], torch.ones_like(random_ids)])
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for parameter in vocabulary_rows:
        parameter.requires_grad_(True)


@torch.no_grad()
def _calibrate_decoder_bias(model: ModernBertForMaskedLM, tokenizer, active_ids: int) -> None:
    """Shift all logits down so that on sample sentences about ``active_ids`` ids stay positive."""
    sentences = [sentence for group in read_parakqc_sets()[:CALIBRATION_SETS] for sentence in group]
    features = tokenizer(sentences, padding=True, return_tensors="pt")
    logits = model.eval()(**features).logits
    pooled = logits.masked_fill(~features["attention_mask"].bool().unsqueeze(-1), float("-inf")).amax(dim=1)
    threshold = pooled.topk(active_ids, dim=1).values[:, -1].median()
    model.decoder.bias -= threshold
    model.train()
