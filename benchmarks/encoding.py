"""Encoding speed: ko-sparse's batch encoder against ``SparseEncoder.encode`` on the same model and texts.

ko-sparse sorts texts by length, runs in inference mode, max-pools the MLM logits before the
element-wise log(1 + ReLU) (one ``[B, V]`` pass instead of ``[B, L, V]``) and moves only non-zero
weights to the host. The vectors must be identical; the largest difference is recorded.
"""

from __future__ import annotations

import numpy as np

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
    texts = documents(count)

    def ours():
        return encode_sparse(encoder, texts, batch, max_length)

    def theirs():
        return encoder.encode(texts, batch_size=batch, convert_to_tensor=True, convert_to_sparse_tensor=True)

    ours_s, theirs_s = paired_timed(ours, theirs, args.repeat)
    difference = np.abs(ours().toarray() - theirs().to_dense().float().cpu().numpy()).max()
    shape = dict(model=spec, documents=len(texts), max_length=max_length, batch_size=batch)
    report(
        "encode",
        per_second(len(texts), ours_s),
        "documents/s",
        "sentence_transformers SparseEncoder.encode",
        per_second(len(texts), theirs_s),
        target=1.2,
        max_abs_difference=float(difference),
        **shape,
    )
    peak = matmul_flops_per_second(device, args.repeat)
    report_utilisation("encode", counted_flops(ours), ours_s, peak, "torch matmul FLOP/s (2048x2048)", **shape)


if __name__ == "__main__":
    main()
