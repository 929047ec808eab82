"""A SPLADE encoder exported to ONNX, run by ONNX Runtime (the optional ``[onnx]`` extra).

The graph takes token ids and the attention mask (in that order, whatever their names) and returns
the ``[B, vocab]`` SPLADE weights. ONNX Runtime's fused CPU kernels encode faster than eager PyTorch
on small batches; ``python -m benchmarks onnx`` measures by how much.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ko_sparse.model.splade import ModelLoadError

INSTALL_HINT = "pip install 'ko-sparse[onnx]'"


class OnnxRuntimeMissing(ModelLoadError):
    """onnxruntime is not installed."""


def onnxruntime_module():
    """The ``onnxruntime`` module, or a clear error saying how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxRuntimeMissing(f"ONNX models need onnxruntime, which is not installed: {INSTALL_HINT}") from error
    return onnxruntime


class OnnxSparseModel:
    """An ONNX Runtime session over an exported SPLADE graph, on the CPU.

    ``threads`` (default: as many as torch uses) sets ONNX Runtime's intra-op pool, so that both
    runtimes get the same cores."""

    def __init__(self, model: bytes | str | Path, threads: int | None = None) -> None:
        ort = onnxruntime_module()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only
        source = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        if len(self.input_names) != 2:
            raise ModelLoadError(f"expected an ONNX graph with 2 inputs (ids, mask), got {self.input_names}")

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """SPLADE weights ``[B, vocab]`` (float32) of a padded int64 batch."""
        feeds = dict(zip(self.input_names, (input_ids.astype(np.int64), attention_mask.astype(np.int64)), strict=True))
        return self.session.run(None, feeds)[0]

    def run_torch(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The same for torch tensors keyed ``input_ids`` / ``attention_mask``."""
        return torch.from_numpy(self(inputs["input_ids"].numpy(), inputs["attention_mask"].numpy()))
