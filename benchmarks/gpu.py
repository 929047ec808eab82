"""The GPU check (``benchmarks/gpu_check.sh`` runs it on a lent GPU machine) with the production-size stand-in
(``random:ax-encoder-base``, ~150 M parameters):

* training through ``ko-sparse train`` at the notebook's shape and the realistic retrieval shape, eager and
  with ``training.compile``: steps/s, tokens/s, peak memory, compile overhead, and the share of the GPU's
  measured bf16 matmul rate (``benchmarks.trainer_speed``; goal 0.4);
* ``gpu_encode``: documents/s of ``encode_sparse`` against ``SparseEncoder.encode`` on the 1,020 medical
  documents (length 512, bf16), both with the vectors on the host; ``gpu_encode_compiled``: the same with
  the encoder's blocks compiled (the peer's figures are the eager ones of the same run).
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.common import (
    FULL_MODEL,
    arguments,
    matmul_flops_per_second,
    paired_timed,
    report,
    seconds,
    timed,
    tiny_encoder,
)
from benchmarks.encoding import documents, library_encode
from benchmarks.trainer_speed import bench_shape, shapes
from ko_sparse.model.compiled import compile_encoder
from ko_sparse.model.encode import encode_sparse

LENGTH, BATCH = 512, 64


def bench_encoding(repeat: int) -> None:
    encoder = tiny_encoder(FULL_MODEL, LENGTH, torch.device("cuda")).eval()
    texts = documents(1020)

    def ours():
        return encode_sparse(encoder, texts, BATCH, LENGTH)

    def theirs():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return library_encode(encoder, texts, BATCH)

    ours_s, theirs_s = paired_timed(ours, theirs, repeat)
    peer = "sentence_transformers SparseEncoder.encode (bf16 autocast), vectors copied to the host"
    shape = dict(model=FULL_MODEL, documents=len(texts), max_length=LENGTH, batch_size=BATCH, target=1.5)
    rate = [len(texts) / s for s in theirs_s]
    report("gpu_encode", [len(texts) / s for s in ours_s], "documents/s", peer, rate, **shape)
    compile_encoder(encoder)
    first = seconds(ours)  # compiles
    runs = timed(ours, repeat, warmup=0)
    compiled = [len(texts) / s for s in runs]
    compile_seconds = round(first - statistics.median(runs), 1)
    report(
        "gpu_encode_compiled",
        compiled,
        "documents/s",
        f"{peer} (eager, same run)",
        rate,
        **shape,
        compile_seconds=compile_seconds,
    )


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "ignored: the GPU check has one size")
    if not torch.cuda.is_available():
        raise SystemExit("the GPU check needs a CUDA device (benchmarks/gpu_check.sh on a lent GPU machine)")
    device = torch.device("cuda")
    peak = matmul_flops_per_second(device, args.repeat, size=8192)
    spec, selected = shapes(False, device)
    for shape in reversed(selected):  # the realistic shape first: the figure the goal is about
        bench_shape(shape, spec, args.repeat, peak, prefix="gpu_")
    bench_encoding(args.repeat)


if __name__ == "__main__":
    main()
