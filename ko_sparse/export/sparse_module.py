"""The module ML-Commons calls: SPLADE over the masked LM, special tokens zeroed, optional pruning.

Every export format (TorchScript, ONNX) is made from this eager module and verified against it.
ML-Commons feeds ``input_ids`` and ``attention_mask`` (no ``token_type_ids``) and reads one
``[B, vocab]`` float tensor named ``output``; every non-zero becomes a token weight, so the output
must be non-negative with special tokens at zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Dict  # noqa: UP035 - TorchScript needs typing.Dict

import torch
from sentence_transformers import SparseEncoder

from ko_sparse.model.splade import mlm_of, special_token_ids, splade_max_pool

EXAMPLE_TEXTS = ["당뇨병 치료에 좋은 음식은 무엇인가요?", "고혈압"]  # padded batch: the masks are exported
Inputs = Dict[str, torch.Tensor]  # noqa: UP006
Runner = Callable[[Inputs], torch.Tensor]  # runs an exported model: inputs -> [B, vocab] weights


class MLCommonsSparseModule(torch.nn.Module):
    """SPLADE with the ML-Commons signature; ``prune_ratio`` keeps weights above ``ratio * max``."""

    def __init__(self, mlm: torch.nn.Module, special_ids: list[int], prune_ratio: float = 0.0) -> None:
        super().__init__()
        self.mlm = mlm
        keep = torch.ones(mlm.get_output_embeddings().out_features)
        keep[special_ids] = 0.0
        self.register_buffer("keep", keep)
        self.prune_ratio = prune_ratio

    def forward(self, input: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:  # noqa: UP006
        input_ids, attention_mask = input["input_ids"], input["attention_mask"]
        logits = self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits
        values = splade_max_pool(logits, attention_mask) * self.keep
        if self.prune_ratio > 0:
            threshold = values.amax(dim=1, keepdim=True) * self.prune_ratio
            values = values * (values > threshold).to(values.dtype)
        return {"output": values}


def eager_module(encoder: SparseEncoder, prune_ratio: float) -> MLCommonsSparseModule:
    """The module to export, on CPU in fp32 with eager attention (DJL's libtorch has no SDPA kernels)."""
    mlm = mlm_of(encoder).float().eval()
    mlm.set_attn_implementation("eager")
    return MLCommonsSparseModule(mlm, special_token_ids(encoder.tokenizer), prune_ratio).eval()


def model_inputs(encoder: SparseEncoder, texts: list[str], max_length: int) -> Inputs:
    """A padded batch as ML-Commons builds it: ``input_ids`` and ``attention_mask`` only."""
    features = encoder.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}


@dataclass(frozen=True)
class ExportedModel:
    """One export of the module: the file ML-Commons loads (on disk: a 600 MB model is never held twice),
    its format, and a way to run it here."""

    path: Path
    suffix: str  # the model file's extension in the zip
    model_format: str  # ML-Commons' name: TORCH_SCRIPT or ONNX
    run: Runner
