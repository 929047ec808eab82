"""Training speed: ko-sparse's vectorised losses and full step against the notebook's form.

* ``train_losses``: the four losses (forward + backward) on the same random SPLADE vectors, vectorised
  against the notebook's per-example loops.
* ``train_step``: one full optimizer step on the same model and triplet batch: ko-sparse (one forward
  over anchors+positives+negatives, decoder and max-pool fused with a backward through the arg-max
  positions only, vectorised losses) against the notebook (three forwards, log1p/ReLU/mask on
  [B, L, V], loop losses).
"""

from __future__ import annotations

import torch

from benchmarks.common import (
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
from ko_sparse.losses import LossConfig, SpladeTripletLoss, TripletBatch, token_activation_loss
from ko_sparse.losses import notebook_reference as notebook
from ko_sparse.model.encode import splade_forward
from ko_sparse.model.splade import mlm_of
from ko_sparse.resources.parakqc import read_parakqc_sets
from ko_sparse.train.collator import TripletCollator

CONFIG = LossConfig()
LOSS_BATCH = 64  # the notebook's batch size
LOSS_STEPS = 20  # a loss step takes milliseconds: each timed run is this many steps


def notebook_losses(anchor, positive, negative, batch, size):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    return (
        CONFIG.lambda_self * notebook.self_loss(anchor, ids[:size], mask[:size])
        + CONFIG.lambda_synonym * notebook.self_loss(anchor, ids[size : 2 * size], mask[size : 2 * size])
        + CONFIG.lambda_margin * notebook.triplet_margin_loss(anchor, positive, negative, CONFIG.target_margin)
        + CONFIG.lambda_flops * notebook.flops_loss(anchor)
    )


def vectorised_losses(anchor, positive, negative, batch, size):
    ids, token_mask = batch["input_ids"], batch["token_mask"]
    triplets = TripletBatch(
        anchor,
        positive,
        negative,
        expanded=anchor,
        own_ids=ids[:size],
        own_mask=token_mask[:size],
        target_ids=ids[size : 2 * size],
        target_mask=token_mask[size : 2 * size],
        flops_inputs=anchor,  # the notebook's FLOPS term: anchors only
    )
    return SpladeTripletLoss(CONFIG)(triplets)[0]


def triplet_batch(tokenizer, size: int, max_length: int, device) -> dict[str, torch.Tensor]:
    sets = read_parakqc_sets()
    rows = [{"anchor": s[0], "positive": s[1], "negative": sets[i + 1][0]} for i, s in enumerate(sets[:size])]
    return {k: v.to(device) for k, v in TripletCollator(tokenizer, max_length)(rows).items()}


def notebook_activation_losses(anchor, positive, negative, batch, size):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    return notebook.self_loss(anchor, ids[:size], mask[:size]) + notebook.self_loss(
        anchor, ids[size : 2 * size], mask[size : 2 * size]
    )


def vectorised_activation_losses(anchor, positive, negative, batch, size):
    ids, token_mask = batch["input_ids"], batch["token_mask"]
    return token_activation_loss(anchor, ids[:size], token_mask[:size]) + token_activation_loss(
        anchor, ids[size : 2 * size], token_mask[size : 2 * size]
    )


def bench_losses(batch, size: int, vocab: int, repeat: int, device) -> None:
    """Forward + backward of the losses on fixed random vectors (no model)."""
    generator = torch.Generator(device=device).manual_seed(0)
    vectors = torch.relu(torch.randn(3 * size, vocab, generator=generator, device=device)).requires_grad_()

    def run(losses):
        def steps():
            for _ in range(LOSS_STEPS):
                anchor, positive, negative = vectors.split(size)
                losses(anchor, positive, negative, batch, size).backward()
                vectors.grad = None

        return steps

    # the self and synonym losses are where the notebook loops; margin and FLOPS are the same code in both
    ours, theirs = paired_timed(run(vectorised_activation_losses), run(notebook_activation_losses), repeat)
    report(
        "train_activation_losses",
        per_second(LOSS_STEPS, ours),
        "steps/s",
        "notebook per-example loops",
        per_second(LOSS_STEPS, theirs),
        target=10.0,
        batch_size=size,
    )
    ours, theirs = paired_timed(run(vectorised_losses), run(notebook_losses), repeat)
    report(
        "train_losses",
        per_second(LOSS_STEPS, ours),
        "steps/s",
        "notebook per-example loops",
        per_second(LOSS_STEPS, theirs),
        batch_size=size,
    )


def bench_full_step(encoder, spec: str, batch, size: int, repeat: int) -> None:
    mlm = mlm_of(encoder).train()
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=1e-6)

    def ours():
        vectors = splade_forward(mlm, batch["input_ids"], batch["attention_mask"])
        vectorised_losses(*vectors.split(size), batch, size).backward()
        optimizer.step()
        optimizer.zero_grad()

    def theirs():
        parts = [slice(0, size), slice(size, 2 * size), slice(2 * size, 3 * size)]
        reps = [notebook.splade_forward(mlm, batch["input_ids"][p], batch["attention_mask"][p]) for p in parts]
        notebook_losses(*reps, batch, size).backward()
        optimizer.step()
        optimizer.zero_grad()

    ours_s, theirs_s = paired_timed(ours, theirs, repeat)
    shape = dict(model=spec, batch_size=size, max_length=batch["input_ids"].shape[1])
    report(
        "train_step",
        per_second(1, ours_s),
        "steps/s",
        "notebook step (3 forwards, loop losses)",
        per_second(1, theirs_s),
        target=1.5,
        **shape,
    )
    peak = matmul_flops_per_second(batch["input_ids"].device, repeat)
    report_utilisation("train_step", counted_flops(ours), ours_s, peak, "torch matmul FLOP/s (2048x2048)", **shape)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny model, batch 16, length 32")
    device = default_device()
    size, max_length, spec = (16, 32, "tiny:64x2") if args.quick else (64, 64, "tiny:768x22")
    encoder = tiny_encoder(spec, max_length, device)
    batch = triplet_batch(encoder.tokenizer, size, max_length, device)
    loss_batch = triplet_batch(encoder.tokenizer, LOSS_BATCH, 64, device)
    bench_losses(loss_batch, LOSS_BATCH, len(encoder.tokenizer), args.repeat, device)
    bench_full_step(encoder, spec, batch, size, args.repeat)


if __name__ == "__main__":
    main()
