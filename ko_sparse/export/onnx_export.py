"""The ONNX export ML-Commons' ONNX Runtime engine loads, and ko-sparse runs locally.

What ML-Commons 3.6 (DJL 0.31.1, ONNX Runtime 1.16.3) needs, each seen on the local node:

- input names ``input1.input_ids`` and ``input1.attention_mask``: its sparse translator names the
  arrays so for TorchScript's dict argument, and DJL's ONNX block refuses any other name
  ("Invalid input tensor name: input1.input_ids");
- IR version 9 and opset <= 19 ("Unsupported model IR version: 10, max supported IR version: 9");
- every ``LayerNormalization`` with a bias input: ONNX Runtime 1.16's attention fusion reads input 2
  unchecked and aborts the whole JVM on ModernBERT's bias-free layer norms, so a zero bias is added.

The graph comes from torch's ``torch.export``-based exporter (``dynamo=True``), not from TorchScript.
Batch and sequence axes are dynamic; the output is ``output``, ``[B, vocab]``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SparseEncoder

from ko_sparse.errors import KoSparseError
from ko_sparse.export.sparse_module import EXAMPLE_TEXTS, ExportedModel, MLCommonsSparseModule, model_inputs
from ko_sparse.export.verification import Verification, verify
from ko_sparse.model.onnx_runtime import INSTALL_HINT, OnnxSparseModel

INPUT_NAMES = ("input1.input_ids", "input1.attention_mask")  # what ML-Commons' translator feeds
OUTPUT_NAME = "output"
OPSET = 18
IR_VERSION = 9  # ONNX Runtime 1.16 (ML-Commons 2.19-3.6) reads IR <= 9
RUNTIME = "ONNX Runtime"


class OnnxExportError(KoSparseError):
    """The model could not be exported to ONNX, or the export does not match the eager model."""


class _PositionalInputs(torch.nn.Module):
    """The dict-in, dict-out module as ``(input_ids, attention_mask) -> output`` for the exporter."""

    def __init__(self, module: MLCommonsSparseModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.module({"input_ids": input_ids, "attention_mask": attention_mask})["output"]


def onnx_graph(module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int):
    """The exported ``onnx.ModelProto``, made loadable by ML-Commons' ONNX Runtime."""
    try:
        import onnx  # noqa: F401 - the exporter needs onnx and onnxscript
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise OnnxExportError(f"ONNX export needs onnx and onnxscript: {INSTALL_HINT}") from error
    example = model_inputs(encoder, EXAMPLE_TEXTS, max_length)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    axes = {0: batch, 1: sequence}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" notes
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                _PositionalInputs(module).eval(),
                (example["input_ids"], example["attention_mask"]),
                dynamo=True,
                opset_version=OPSET,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"input_ids": axes, "attention_mask": axes},
                optimize=True,
                verbose=False,
            )
    except Exception as error:  # the exporter raises many kinds; all mean the same to the user
        raise OnnxExportError(f"torch.onnx.export failed: {error.__class__.__name__}: {error}") from error
    finally:
        exporter_log.setLevel(level)
    graph = program.model_proto
    graph.ir_version = IR_VERSION
    _explicit_layer_norm_bias(graph)
    return graph


def _explicit_layer_norm_bias(graph) -> None:
    """Give every two-input ``LayerNormalization`` a zero bias (the same values, loadable by ORT 1.16)."""
    from onnx import helper, numpy_helper

    initializers = {tensor.name: tensor for tensor in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type != "LayerNormalization" or len(node.input) != 2:
            continue
        scale = initializers.get(node.input[1])
        if scale is None:
            raise OnnxExportError(f"LayerNormalization {node.name}: its scale is not a constant")
        name = f"{node.input[1]}.zero_bias"
        if name not in initializers:
            zeros = np.zeros(tuple(scale.dims), dtype=helper.tensor_dtype_to_np_dtype(scale.data_type))
            initializers[name] = numpy_helper.from_array(zeros, name)
            graph.graph.initializer.append(initializers[name])
        node.input.append(name)


def onnx_bytes(module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int) -> bytes:
    """The serialised graph, checked by ``onnx.checker``."""
    import onnx

    graph = onnx_graph(module, encoder, max_length)
    onnx.checker.check_model(graph)
    return graph.SerializeToString()


def export_onnx(module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int, path: Path) -> ExportedModel:
    """The graph saved to ``path`` (``.onnx``), and an ONNX Runtime session over it to verify."""
    path.write_bytes(onnx_bytes(module, encoder, max_length))
    return ExportedModel(path, ".onnx", "ONNX", OnnxSparseModel(path).run_torch)


def verified_onnx_model(
    module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int
) -> tuple[OnnxSparseModel, Verification]:
    """Export, verify against the eager module, and return the ONNX Runtime model for local encoding."""
    runtime = OnnxSparseModel(onnx_bytes(module, encoder, max_length))
    verification = verify(runtime.run_torch, module, encoder, max_length, RUNTIME)
    if not verification.passed:
        raise OnnxExportError(f"{verification.summary()}; the ONNX model is not used")
    return runtime, verification
