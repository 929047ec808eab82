"""Trace a SPLADE encoder to the TorchScript module ML-Commons calls, and verify the trace.

ML-Commons (through DJL) calls ``forward(input: Dict[str, Tensor]) -> Dict[str, Tensor]`` with
``input_ids`` and ``attention_mask`` (no ``token_type_ids``) and reads one ``[B, vocab]`` float
tensor named ``output``; every non-zero becomes a token weight, so the output must be non-negative
with special tokens at zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict  # noqa: UP035 - TorchScript needs typing.Dict

import torch
from sentence_transformers import SparseEncoder

from ko_sparse.model.splade import mlm_of, special_token_ids, splade_max_pool

TRACE_TEXTS = ["당뇨병 치료에 좋은 음식은 무엇인가요?", "고혈압"]  # padded batch: the masks are traced
VERIFY_TEXTS = [
    "당뇨병 치료",
    "서울에서 부산까지 기차로 얼마나 걸리나요? 주말에는 표가 빨리 매진되나요?",
    "감기 몸살에 먹는 약",
    "메일을 다 지울까 아니면 안 읽은 것만 지울까?",
    "고혈압 환자의 운동 요법과 식이 요법, 그리고 약물 치료의 효과에 대한 최신 연구 결과를 정리해 주세요.",
]


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
    """The module to trace, on CPU in fp32 with eager attention (DJL's libtorch has no SDPA kernels)."""
    mlm = mlm_of(encoder).float().eval()
    mlm.set_attn_implementation("eager")
    return MLCommonsSparseModule(mlm, special_token_ids(encoder.tokenizer), prune_ratio).eval()


def trace(module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int) -> torch.jit.ScriptModule:
    features = encoder.tokenizer(TRACE_TEXTS, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    example = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on Python booleans; the verification checks the result
        return torch.jit.trace(module, (example,), strict=False, check_trace=False)


@dataclass(frozen=True)
class Verification:
    """Traced vs eager on texts and shapes other than the traced one."""

    cases: list[tuple[int, int]]  # (batch size, sequence length) checked
    max_relative_error: float
    top_tokens_equal: bool

    @property
    def passed(self) -> bool:
        return self.top_tokens_equal and self.max_relative_error <= 1e-4

    def summary(self) -> str:
        shapes = ", ".join(f"{b}x{n}" for b, n in self.cases)
        verdict = "OK" if self.passed else "FAILED"
        return (
            f"trace verification {verdict}: shapes {shapes}; max relative error {self.max_relative_error:.2e}; "
            f"top-20 tokens {'identical' if self.top_tokens_equal else 'DIFFER'}"
        )


@torch.no_grad()
def verify(
    traced: torch.jit.ScriptModule, module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int
) -> Verification:
    """Compare traced and eager outputs one text at a time (as ML-Commons calls) and in padded batches."""
    batches = [[text] for text in VERIFY_TEXTS] + [VERIFY_TEXTS[:3], VERIFY_TEXTS]
    cases, worst, same_top = [], 0.0, True
    for texts in batches:
        features = encoder.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        inputs = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
        expected, actual = module(inputs)["output"], traced(inputs)["output"]
        cases.append(tuple(features["input_ids"].shape))
        scale = expected.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
        worst = max(worst, float(((actual - expected).abs() / scale).max()))
        same_top &= bool((expected.topk(20).indices == actual.topk(20).indices).all())
    return Verification(cases, worst, same_top)
