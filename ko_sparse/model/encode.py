"""Batched SPLADE encoding: length-sorted batches, inference mode, sparse output.

Only the non-zero weights leave the device, so ``N`` texts never become a dense ``[N, vocab]``
array on the host. The batches run through the PyTorch model, or through the same model exported to
ONNX and run by ONNX Runtime (``onnx=``): same tokenisation, order and output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from sentence_transformers import SparseEncoder
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ko_sparse.model.max_pooled_decoder import MaxPooledDecoder, decoder_bypassed
from ko_sparse.model.onnx_runtime import OnnxSparseModel
from ko_sparse.model.splade import mlm_of, splade_max_pool


def splade_forward(mlm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """SPLADE vectors ``[B, V]`` of a tokenised batch.

    With autograd on (training), the decoder and max-pool run fused (``MaxPooledDecoder``): same
    values and gradients, without keeping or back-propagating the ``[B, L, V]`` logits.
    """
    if torch.is_grad_enabled():
        with decoder_bypassed(mlm) as decoder:
            if decoder is not None:
                hidden = mlm(input_ids=input_ids, attention_mask=attention_mask).logits
                pooled = MaxPooledDecoder.apply(hidden, decoder.weight, decoder.bias, attention_mask)
                return torch.log1p(torch.relu(pooled))
    logits = mlm(input_ids=input_ids, attention_mask=attention_mask).logits
    return splade_max_pool(logits, attention_mask)


def encode_sparse(
    encoder: SparseEncoder,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
    show_progress: bool = False,
    onnx: OnnxSparseModel | None = None,
) -> sp.csr_matrix:
    """Encode ``texts`` into a float32 CSR matrix ``[N, vocab]``, rows in input order.

    With ``onnx`` (the encoder's model exported to ONNX), ONNX Runtime runs the batches instead of torch."""
    mlm = mlm_of(encoder)
    device = next(mlm.parameters()).device
    tokenizer = encoder.tokenizer
    tokens = tokenizer(list(texts), truncation=True, max_length=max_length or encoder.max_seq_length)
    order = sorted(range(len(texts)), key=lambda i: len(tokens["input_ids"][i]), reverse=True)
    was_training = mlm.training
    mlm.eval()
    vocab_size = mlm.get_output_embeddings().out_features
    batches = [sp.csr_matrix((0, vocab_size), dtype=np.float32)]
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="Encoding", unit="batch", disable=not show_progress):
            batch_rows = order[start : start + batch_size]
            features = tokenizer.pad(
                {key: [tokens[key][i] for i in batch_rows] for key in ("input_ids", "attention_mask")},
                return_tensors="np" if onnx is not None else "pt",
            )
            batches.append(_encode_batch(mlm, device, features, onnx))
    mlm.train(was_training)
    in_length_order = sp.vstack(batches, format="csr")
    return in_length_order[np.argsort(order)] if order else in_length_order


def _encode_batch(mlm: PreTrainedModel, device: torch.device, features, onnx: OnnxSparseModel | None) -> sp.csr_matrix:
    """One padded batch through ONNX Runtime (numpy features) or the PyTorch model (tensors)."""
    if onnx is not None:
        return sp.csr_matrix(onnx(features["input_ids"], features["attention_mask"]))
    features = features.to(device)
    return _to_csr(splade_forward(mlm, features["input_ids"], features["attention_mask"]))


def _to_csr(vectors: torch.Tensor) -> sp.csr_matrix:
    """The non-zero weights of ``[B, V]`` vectors, copied to the host as CSR (row-major, no sort)."""
    rows, cols = vectors.nonzero(as_tuple=True)
    indptr = torch.zeros(vectors.shape[0] + 1, dtype=torch.int64, device=vectors.device)
    indptr[1:] = torch.bincount(rows, minlength=vectors.shape[0]).cumsum(0)
    values = vectors[rows, cols].float()
    index_type = torch.int32 if len(cols) < 2**31 else torch.int64  # scipy's own choice: no conversion pass
    return sp.csr_matrix(
        (values.cpu().numpy(), cols.to(index_type).cpu().numpy(), indptr.to(index_type).cpu().numpy()),
        shape=vectors.shape,
    )
