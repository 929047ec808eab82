"""The TorchScript export ML-Commons' PyTorch engine loads.

ML-Commons (through DJL) calls ``forward(input: Dict[str, Tensor]) -> Dict[str, Tensor]``: DJL groups
its ``input1.input_ids`` / ``input1.attention_mask`` arrays into one dict argument. TorchScript is
deprecated in torch >= 2.10 (``torch.jit`` warns); ``ko-sparse package --format onnx`` is the other way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from sentence_transformers import SparseEncoder

from ko_sparse.export.sparse_module import EXAMPLE_TEXTS, ExportedModel, MLCommonsSparseModule, model_inputs


def trace(module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int) -> torch.jit.ScriptModule:
    example = model_inputs(encoder, EXAMPLE_TEXTS, max_length)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on Python booleans; the verification checks the result
        return torch.jit.trace(module, (example,), strict=False, check_trace=False)


def export_torchscript(
    module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int, path: Path
) -> ExportedModel:
    """The traced module saved to ``path`` (``.pt``), and the traced module to verify."""
    traced = trace(module, encoder, max_length)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but ML-Commons runs it
        torch.jit.save(traced, str(path))
    return ExportedModel(path, ".pt", "TORCH_SCRIPT", lambda inputs: traced(inputs)["output"])
