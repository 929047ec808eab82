"""The GPU check (``benchmarks/gpu_check.sh`` runs it on a lent GPU machine): the production-size stand-in
(``random:ax-encoder-base``, ~150 M parameters) at the notebook's batch (64 triplets, length 64).

* ``gpu_train_step_bf16`` / ``gpu_train_step_fp16``: ko-sparse's training step (``NotebookSpladeLoss`` over
  the ``SparseEncoder``, fused decoder) under bf16 autocast, and fp16 autocast with a gradient scaler,
  against the notebook's step (three forwards, ``[B, L, V]`` element-wise work, loop losses) under the
  same precision; tokens/s and peak GPU memory recorded.
* ``gpu_train_step_flops``: achieved FLOP/s of ko-sparse's bf16 step against the GPU's measured bf16
  matmul FLOP/s (goal: at least 40%).
* ``gpu_encode``: documents/s of ``encode_sparse`` against ``SparseEncoder.encode`` (bf16 autocast both, the
  result on the host both).
"""

from __future__ import annotations

import torch

from benchmarks.common import (
    arguments,
    counted_flops,
    matmul_flops_per_second,
    paired_timed,
    per_second,
    report,
    report_utilisation,
    tiny_encoder,
)
from benchmarks.encoding import documents
from benchmarks.train_step import CONFIG, notebook_losses, triplet_features
from ko_sparse.losses import NotebookSpladeLoss
from ko_sparse.losses import notebook_reference as notebook
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.max_pooled_decoder import fused_max_pooling
from ko_sparse.model.splade import mlm_of, special_token_ids

SPEC = "random:ax-encoder-base"
BATCH, LENGTH = 64, 64  # the notebook's
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


def training_steps(encoder, loss, features, precision: str):
    """(ko-sparse step, notebook step) closures under ``precision``'s autocast (fp16 with a grad scaler)."""
    dtype = PRECISIONS[precision]
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-6)
    mlm = mlm_of(encoder)

    def finish(total: torch.Tensor) -> None:
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()

    def ours():
        with fused_max_pooling(encoder), torch.autocast("cuda", dtype=dtype):
            total = sum(loss(features).values())
        finish(total)

    def theirs():
        with torch.autocast("cuda", dtype=dtype):
            reps = [notebook.splade_forward(mlm, f["input_ids"], f["attention_mask"]).float() for f in features]
            total = notebook_losses(*reps, features)
        finish(total)

    return ours, theirs


def bench_training(encoder, repeat: int) -> None:
    device = torch.device("cuda")
    loss = NotebookSpladeLoss(encoder, CONFIG, special_token_ids(encoder.tokenizer), doc_only=False)
    features = triplet_features(encoder.tokenizer, BATCH, LENGTH, device)
    tokens = sum(int(f["attention_mask"].sum()) for f in features)
    encoder.train()
    for precision in PRECISIONS:
        ours, theirs = training_steps(encoder, loss, features, precision)
        torch.cuda.reset_peak_memory_stats()
        ours_s, theirs_s = paired_timed(ours, theirs, repeat)
        shape = dict(model=SPEC, precision=precision, batch_size=BATCH, max_length=LENGTH, tokens_per_step=tokens)
        report(
            f"gpu_train_step_{precision}",
            per_second(1, ours_s),
            "steps/s",
            f"notebook step ({precision} autocast, 3 forwards, loop losses)",
            per_second(1, theirs_s),
            target=1.5,
            tokens_per_second=round(tokens * len(ours_s) / sum(ours_s)),
            peak_gpu_memory_gb=round(torch.cuda.max_memory_allocated() / 1e9, 2),
            **shape,
        )
        if precision == "bf16":
            peak = matmul_flops_per_second(device, repeat, size=8192)
            report_utilisation(
                "gpu_train_step",
                counted_flops(ours),
                ours_s,
                peak,
                "torch bf16 matmul FLOP/s (8192x8192)",
                target=0.4,
                **shape,
            )


def bench_encoding(encoder, repeat: int) -> None:
    texts = documents(1020)
    encoder.eval()

    def ours():  # bf16 autocast: encode_sparse's default on a GPU that supports it
        return encode_sparse(encoder, texts, 64, 512)

    def theirs():  # save_to_cpu: the result on the host, as ours and as indexing needs it
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return encoder.encode(
                texts, batch_size=64, convert_to_tensor=True, convert_to_sparse_tensor=True, save_to_cpu=True
            )

    ours_s, theirs_s = paired_timed(ours, theirs, repeat)
    report(
        "gpu_encode",
        per_second(len(texts), ours_s),
        "documents/s",
        "sentence_transformers SparseEncoder.encode (bf16 autocast, save_to_cpu=True: the result on the host)",
        per_second(len(texts), theirs_s),
        target=1.5,
        model=SPEC,
        documents=len(texts),
        max_length=512,
        batch_size=64,
    )


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "ignored: the GPU check has one size")
    if not torch.cuda.is_available():
        raise SystemExit("the GPU check needs a CUDA device (benchmarks/gpu_check.sh on a lent GPU machine)")
    encoder = tiny_encoder(SPEC, LENGTH, torch.device("cuda"))
    bench_training(encoder, args.repeat)
    bench_encoding(encoder, args.repeat)


if __name__ == "__main__":
    main()
