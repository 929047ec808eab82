"""Training speed: ko-sparse's training step against the notebook's form, on the same model and batch.

* ``train_losses`` / ``train_activation_losses``: the losses (forward + backward) on the same random
  SPLADE vectors: :class:`NotebookSpladeLoss`'s components (vectorised) against the notebook's
  per-example loops.
* ``train_step``: one optimizer step. ko-sparse: what ``ko-sparse train`` runs inside
  ``SparseEncoderTrainer`` (the ``NotebookSpladeLoss`` module over the ``SparseEncoder``, one merged
  forward over anchors, positives and negatives, decoder and max-pool fused while training). The
  notebook: three forwards with log1p/ReLU/mask on ``[B, L, V]`` and loop losses.
"""

from __future__ import annotations

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
from ko_sparse.losses import LossConfig, NotebookSpladeLoss
from ko_sparse.losses import notebook_reference as notebook
from ko_sparse.model.max_pooled_decoder import fused_max_pooling
from ko_sparse.model.splade import mlm_of, special_token_ids
from ko_sparse.resources.parakqc import read_parakqc_sets

CONFIG = LossConfig()
LOSS_BATCH = 64  # the notebook's batch size
LOSS_STEPS = 20  # a loss step takes milliseconds: each timed run is this many steps


def triplet_features(tokenizer, size: int, max_length: int, device) -> list[dict[str, torch.Tensor]]:
    """Anchor, positive and negative columns of ``size`` paraKQC triplets, padded to one length as
    the trainer's merged forward pads them."""
    sets = read_parakqc_sets()
    columns = [[s[0] for s in sets[:size]], [s[1] for s in sets[:size]], [sets[i + 1][0] for i in range(size)]]
    features = tokenizer(
        [text for column in columns for text in column],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return [
        {key: features[key][i * size : (i + 1) * size].to(device) for key in ("input_ids", "attention_mask")}
        for i in range(3)
    ]


def notebook_losses(anchor, positive, negative, features):
    (anchor_ids, anchor_mask), (positive_ids, positive_mask) = (
        (f["input_ids"], f["attention_mask"]) for f in features[:2]
    )
    return (
        CONFIG.lambda_self * notebook.self_loss(anchor, anchor_ids, anchor_mask)
        + CONFIG.lambda_synonym * notebook.self_loss(anchor, positive_ids, positive_mask)
        + CONFIG.lambda_margin * notebook.triplet_margin_loss(anchor, positive, negative, CONFIG.target_margin)
        + CONFIG.lambda_flops * notebook.flops_loss(anchor)
    )


def vectorised_losses(loss: NotebookSpladeLoss, anchor, positive, negative, features):
    return sum(loss.compute_loss_from_embeddings([anchor, positive, negative], features, None).values())


def notebook_activation_losses(anchor, features):
    (anchor_ids, anchor_mask), (positive_ids, positive_mask) = (
        (f["input_ids"], f["attention_mask"]) for f in features[:2]
    )
    return notebook.self_loss(anchor, anchor_ids, anchor_mask) + notebook.self_loss(anchor, positive_ids, positive_mask)


def vectorised_activation_losses(loss: NotebookSpladeLoss, anchor, features):
    return loss.activation(anchor, features[0]) + loss.activation(anchor, features[1])


def bench_losses(loss: NotebookSpladeLoss, features, size: int, vocab: int, repeat: int, device) -> None:
    """Forward + backward of the losses on fixed random vectors (no model)."""
    generator = torch.Generator(device=device).manual_seed(0)
    vectors = torch.relu(torch.randn(3 * size, vocab, generator=generator, device=device)).requires_grad_()

    def run(losses):
        def steps():
            for _ in range(LOSS_STEPS):
                losses(*vectors.split(size)).backward()
                vectors.grad = None

        return steps

    # the self and synonym losses are where the notebook loops; margin and FLOPS are the same code in both
    ours, theirs = paired_timed(
        run(lambda a, p, n: vectorised_activation_losses(loss, a, features)),
        run(lambda a, p, n: notebook_activation_losses(a, features)),
        repeat,
    )
    shape = dict(batch_size=size)
    report(
        "train_activation_losses",
        per_second(LOSS_STEPS, ours),
        "steps/s",
        "notebook per-example loops",
        per_second(LOSS_STEPS, theirs),
        target=10.0,
        **shape,
    )
    ours, theirs = paired_timed(
        run(lambda a, p, n: vectorised_losses(loss, a, p, n, features)),
        run(lambda a, p, n: notebook_losses(a, p, n, features)),
        repeat,
    )
    report(
        "train_losses",
        per_second(LOSS_STEPS, ours),
        "steps/s",
        "notebook per-example loops",
        per_second(LOSS_STEPS, theirs),
        **shape,
    )


def bench_full_step(encoder, loss: NotebookSpladeLoss, spec: str, features, size: int, repeat: int) -> None:
    mlm = mlm_of(encoder)
    encoder.train()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-6)

    def ours():
        with fused_max_pooling(encoder):
            sum(loss(features).values()).backward()
        optimizer.step()
        optimizer.zero_grad()

    def theirs():
        reps = [notebook.splade_forward(mlm, f["input_ids"], f["attention_mask"]) for f in features]
        notebook_losses(*reps, features).backward()
        optimizer.step()
        optimizer.zero_grad()

    ours_s, theirs_s = paired_timed(ours, theirs, repeat)
    shape = dict(model=spec, batch_size=size, max_length=features[0]["input_ids"].shape[1])
    report(
        "train_step",
        per_second(1, ours_s),
        "steps/s",
        "notebook step (3 forwards, loop losses)",
        per_second(1, theirs_s),
        target=1.5,
        **shape,
    )
    peak = matmul_flops_per_second(features[0]["input_ids"].device, repeat)
    report_utilisation("train_step", counted_flops(ours), ours_s, peak, "torch matmul FLOP/s (2048x2048)", **shape)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny model, batch 16, length 32")
    device = default_device()
    if args.quick:
        size, max_length, spec = 16, 32, "tiny:64x2"
    elif device.type == "cuda":
        size, max_length, spec = 64, 64, FULL_MODEL  # the notebook's batch
    else:  # a full-size step of the notebook's batch takes minutes on 2 cores: the largest that runs in seconds
        size, max_length, spec = 4, 64, FULL_MODEL
    encoder = tiny_encoder(spec, max_length, device)
    loss = NotebookSpladeLoss(encoder, CONFIG, special_token_ids(encoder.tokenizer), doc_only=False)
    loss_features = triplet_features(encoder.tokenizer, LOSS_BATCH, 64, device)
    bench_losses(loss, loss_features, LOSS_BATCH, len(encoder.tokenizer), args.repeat, device)
    bench_full_step(
        encoder, loss, spec, triplet_features(encoder.tokenizer, size, max_length, device), size, args.repeat
    )


if __name__ == "__main__":
    main()
