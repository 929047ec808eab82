"""One check for every export format: the exported model against the eager module it came from."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sentence_transformers import SparseEncoder

from ko_sparse.export.sparse_module import MLCommonsSparseModule, Runner, model_inputs

VERIFY_TEXTS = [
    "당뇨병 치료",
    "서울에서 부산까지 기차로 얼마나 걸리나요? 주말에는 표가 빨리 매진되나요?",
    "감기 몸살에 먹는 약",
    "메일을 다 지울까 아니면 안 읽은 것만 지울까?",
    "고혈압 환자의 운동 요법과 식이 요법, 그리고 약물 치료의 효과에 대한 최신 연구 결과를 정리해 주세요.",
]
MAX_RELATIVE_ERROR = 1e-4
TOP_TOKENS = 20


@dataclass(frozen=True)
class Verification:
    """Exported vs eager on texts and shapes other than the exported example."""

    cases: list[tuple[int, int]]  # (batch size, sequence length) checked
    max_relative_error: float
    top_tokens_equal: bool
    runtime: str = "TorchScript trace"  # what ran the exported model

    @property
    def passed(self) -> bool:
        return self.top_tokens_equal and self.max_relative_error <= MAX_RELATIVE_ERROR

    def summary(self) -> str:
        shapes = ", ".join(f"{b}x{n}" for b, n in self.cases)
        verdict = "OK" if self.passed else "FAILED"
        top = "identical" if self.top_tokens_equal else "DIFFER"
        return (
            f"{self.runtime} verification {verdict}: shapes {shapes}; max relative error "
            f"{self.max_relative_error:.2e}; top-{TOP_TOKENS} tokens {top}"
        )


@torch.no_grad()
def verify(
    exported: Runner, module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int, runtime: str
) -> Verification:
    """Compare exported and eager outputs one text at a time (as ML-Commons calls) and in padded batches.

    The error is relative to each text's largest weight."""
    batches = [[text] for text in VERIFY_TEXTS] + [VERIFY_TEXTS[:3], VERIFY_TEXTS]
    cases, worst, same_top = [], 0.0, True
    for texts in batches:
        inputs = model_inputs(encoder, texts, max_length)
        expected, actual = module(inputs)["output"], exported(inputs)
        cases.append(tuple(inputs["input_ids"].shape))
        scale = expected.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
        worst = max(worst, float(((actual - expected).abs() / scale).max()))
        same_top &= same_top_tokens(expected, actual)
    return Verification(cases, worst, same_top, runtime)


def same_top_tokens(expected: torch.Tensor, actual: torch.Tensor) -> bool:
    """Whether each row's ``TOP_TOKENS`` largest weights are at the same ids in both; only the expected row's
    non-zero weights count (the order of tied zeros is arbitrary)."""
    for want, got in zip(expected, actual, strict=True):
        count = min(TOP_TOKENS, int((want > 0).sum()))
        if not torch.equal(want.topk(count).indices.sort().values, got.topk(count).indices.sort().values):
            return False
    return True
