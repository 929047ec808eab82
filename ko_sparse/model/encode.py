"""Batched SPLADE encoding: length-sorted batches, inference mode, sparse output.

Only the non-zero weights leave the device, so ``N`` texts never become a dense ``[N, vocab]``
array on the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from sentence_transformers import SparseEncoder
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ko_sparse.model.splade import mlm_of, splade_max_pool


def splade_forward(mlm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """SPLADE vectors ``[B, V]`` of a tokenised batch."""
    logits = mlm(input_ids=input_ids, attention_mask=attention_mask).logits
    return splade_max_pool(logits, attention_mask)


def encode_sparse(
    encoder: SparseEncoder,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
    show_progress: bool = False,
) -> sp.csr_matrix:
    """Encode ``texts`` into a float32 CSR matrix ``[N, vocab]``, rows in input order."""
    mlm = mlm_of(encoder)
    device = next(mlm.parameters()).device
    tokenizer = encoder.tokenizer
    tokens = tokenizer(list(texts), truncation=True, max_length=max_length or encoder.max_seq_length)
    order = sorted(range(len(texts)), key=lambda i: len(tokens["input_ids"][i]), reverse=True)
    was_training = mlm.training
    mlm.eval()
    rows, cols, values = [], [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="Encoding", unit="batch", disable=not show_progress):
            batch_rows = order[start : start + batch_size]
            features = tokenizer.pad(
                {key: [tokens[key][i] for i in batch_rows] for key in ("input_ids", "attention_mask")},
                return_tensors="pt",
            ).to(device)
            vectors = splade_forward(mlm, features["input_ids"], features["attention_mask"])
            local_rows, local_cols = vectors.nonzero(as_tuple=True)
            rows.append(np.asarray(batch_rows)[local_rows.cpu().numpy()])
            cols.append(local_cols.cpu().numpy())
            values.append(vectors[local_rows, local_cols].float().cpu().numpy())
    mlm.train(was_training)
    vocab_size = mlm.get_output_embeddings().out_features
    if not rows:
        return sp.csr_matrix((len(texts), vocab_size), dtype=np.float32)
    coo = sp.coo_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), vocab_size)
    )
    return coo.tocsr()
