"""Encoding speed: ko-sparse's batch encoder against ``SparseEncoder.encode`` on the same model and texts.

Both sides end with the vectors on the host, as indexing needs them: ``encode_sparse``'s CSR matrix, and
the library's sparse tensor copied to the host (``library_encode``). ko-sparse
tokenises in a background thread ahead of the forward passes, sorts texts by token length, runs in
inference mode, max-pools the MLM logits before the element-wise log(1 + ReLU) (one ``[B, V]`` pass
instead of ``[B, L, V]``) and copies only the non-zero weights to the host. On a GPU both run under
bf16 autocast (``encode_sparse``'s default there). The vectors must be identical (within bf16 rounding
on a GPU); the largest difference is recorded.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import (
    FULL_MODEL,
    arguments,
    counted_flops,
    default_device,
    matmul_flops_per_second,
    paired_timed,
    per_second,
    report,
    report_utilisation,
    tiny_encoder,
)
from ko_sparse.data.retrieval_sets import medical
from ko_sparse.model.encode import encode_sparse


def documents(count: int) -> list[str]:
    """The first ``count`` documents of the bundled medical set (Korean, 50 to 500 tokens)."""
    return list(medical().corpus.values())[:count]


def library_encode(encoder, texts: list[str], batch_size: int):
    """``SparseEncoder.encode`` as a user calls it for indexing: the vectors end on the host."""
    return encoder.encode(texts, batch_size=batch_size, convert_to_tensor=True, convert_to_sparse_tensor=True).cpu()


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny:64x2, 128 documents, length 128")
    device = default_device()
    if args.quick:
        spec, count, max_length, batch = "tiny:64x2", 128, 128, 32
    elif device.type == "cuda":
        spec, count, max_length, batch = FULL_MODEL, 1020, 512, 64
    else:  # the production size on 2 CPU cores: a sample of documents, still the medical set's long texts
        spec, count, max_length, batch = FULL_MODEL, 64, 256, 16
    encoder = tiny_encoder(spec, max_length, device)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    texts = documents(count)

    def ours():
        return encode_sparse(encoder, texts, batch, max_length)

    def theirs():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            return library_encode(encoder, texts, batch)

    ours_s, theirs_s = paired_timed(ours, theirs, args.repeat)
    difference = np.abs(ours().toarray() - theirs().to_dense().float().numpy()).max()
    precision = "bf16" if bf16 else "fp32"
    shape = dict(model=spec, documents=len(texts), max_length=max_length, batch_size=batch, precision=precision)
    report(
        "encode",
        per_second(len(texts), ours_s),
        "documents/s",
        f"sentence_transformers SparseEncoder.encode (the result copied to the host; {precision})",
        per_second(len(texts), theirs_s),
        target=1.5 if device.type == "cuda" else 1.2,
        max_abs_difference=float(difference),
        **shape,
    )
    peak = matmul_flops_per_second(device, args.repeat)
    report_utilisation("encode", counted_flops(ours), ours_s, peak, "torch matmul FLOP/s (2048x2048)", **shape)


if __name__ == "__main__":
    main()
