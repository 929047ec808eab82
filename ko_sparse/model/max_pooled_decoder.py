"""The MLM decoder and SPLADE's max-pool fused, with a backward through the arg-max positions only.

SPLADE keeps, for each text and vocabulary id, the largest logit over positions. Autograd through
``decoder(hidden).amax(1)`` keeps the whole ``[B, L, V]`` logits alive and back-propagates a dense
``[B, L, V]`` gradient through the decoder (two more ``B*L*V*H`` matmuls). Only one position per
(text, id) receives gradient, and after ReLU only ids with a positive logit do, so the backward here
gathers those ``N`` pairs: ``N*H`` work instead of ``B*L*V*H``, and only the hidden states and the
``[B, V]`` arg-max positions are kept for it. Values and gradients equal the plain form's.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

CHUNK_ELEMENTS = 1 << 24  # rows x hidden per gather in the backward, bounds its extra memory
LOGIT_ELEMENTS = 1 << 28  # texts x length x vocabulary per decoder chunk in the forward: 512 MB of bf16 logits
FLASH_ATTENTION = ("flash_attention_2", "flash_attention_3")  # unpadded inputs: pooled by the library instead
DECODER_KEY = "ko_sparse_fused_decoder"  # how the fused Transformer hands its decoder to the pooling


class MaxPooledDecoder(torch.autograd.Function):
    """``max_l (hidden[:, l] @ weight.T + bias)`` over non-padding positions: ``[B, L, H] -> [B, V]``."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, attention_mask):
        pooled, positions = max_pooled_logits(hidden, weight, bias, attention_mask)
        ctx.save_for_backward(hidden, weight, positions)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return pooled

    @staticmethod
    def backward(ctx, grad_pooled):
        hidden, weight, positions = ctx.saved_tensors
        batch_size, length, width = hidden.shape
        texts, ids = grad_pooled.nonzero(as_tuple=True)
        dtype = torch.promote_types(weight.dtype, torch.float32)  # accumulate in at least fp32
        grads = grad_pooled[texts, ids].to(dtype)
        rows = texts * length + positions[texts, ids]
        flat_hidden = hidden.reshape(batch_size * length, width)
        grad_hidden = torch.zeros(batch_size * length, width, device=hidden.device, dtype=dtype)
        grad_weight = torch.zeros(weight.shape, device=weight.device, dtype=dtype)
        chunk = max(1, CHUNK_ELEMENTS // width)
        for start in range(0, len(grads), chunk):
            part = slice(start, start + chunk)
            scale = grads[part, None]
            grad_hidden.index_add_(0, rows[part], scale * weight[ids[part]].to(dtype))
            grad_weight.index_add_(0, ids[part], scale * flat_hidden[rows[part]].to(dtype))
        grad_bias = None
        if ctx.has_bias:
            grad_bias = torch.zeros(weight.shape[0], device=weight.device, dtype=dtype)
            grad_bias = grad_bias.index_add_(0, ids, grads).to(ctx.bias_dtype)
        return grad_hidden.view_as(hidden).to(hidden.dtype), grad_weight.to(weight.dtype), grad_bias, None


def max_pooled_logits(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    attention_mask: torch.Tensor,
    budget: int = LOGIT_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest decoder logit of each (text, id) over non-padding positions, and its position.

    The ``[B, L, V]`` logits are made a few texts at a time (at most ``budget`` elements each), so their
    memory stays bounded whatever the batch: 128 texts of 256 tokens over a 50,000-id vocabulary would
    otherwise hold 3.3 GB of bf16 logits, 6.6 GB with a second copy for the mask."""
    texts, length, _ = hidden.shape
    rows = max(1, budget // max(1, length * weight.shape[0]))
    values, positions = [], []
    for start in range(0, texts, rows):
        logits = F.linear(hidden[start : start + rows], weight, bias)
        logits.masked_fill_(~attention_mask[start : start + rows].bool().unsqueeze(-1), float("-inf"))
        chunk = logits.max(dim=1)
        values.append(chunk.values)
        positions.append(chunk.indices)
    if len(values) == 1:
        return values[0], positions[0]
    return torch.cat(values), torch.cat(positions)


@contextlib.contextmanager
def decoder_bypassed(mlm: torch.nn.Module):
    """Inside, ``mlm(...).logits`` are the decoder's inputs; yields the decoder (None if there is none)."""
    inner = getattr(mlm, "module", mlm)  # DDP-wrapped models: swap inside, still call the wrapper
    decoder = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if not isinstance(decoder, torch.nn.Linear):
        yield None
        return
    inner.set_output_embeddings(torch.nn.Identity())
    try:
        yield decoder
    finally:
        inner.set_output_embeddings(decoder)


@contextlib.contextmanager
def fused_max_pooling(model: torch.nn.Module):
    """Inside, every ``Transformer(fill-mask)`` + ``SpladePooling(max)`` pair of ``model`` runs fused when
    autograd is on: the Transformer returns the decoder's inputs and the pooling applies
    :class:`MaxPooledDecoder`, then ``log1p(relu)``. The modules keep their classes and weights (only
    instance ``forward`` attributes are added, and removed on exit), so anything saved inside, such as a
    trainer's checkpoint, is the plain model that ``SparseEncoder`` loads. Without autograd (evaluation,
    encoding) the library's own forward runs.
    """
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    transformers = [m for m in model.modules() if isinstance(m, Transformer) and m.transformer_task == "fill-mask"]
    poolings = [m for m in model.modules() if isinstance(m, SpladePooling)]
    if len(transformers) != 1 or len(poolings) != 1 or poolings[0].pooling_strategy != "max":
        yield False
        return
    transformer, pooling = transformers[0], poolings[0]
    library_transformer, library_pooling = transformer.forward, pooling.forward
    attention = getattr(transformer.auto_model.config, "_attn_implementation", None)

    def transformer_forward(features: dict, **kwargs) -> dict:
        if not (torch.is_grad_enabled() and transformer.training) or attention in FLASH_ATTENTION:
            return library_transformer(features, **kwargs)
        with decoder_bypassed(transformer.auto_model) as decoder:
            features = library_transformer(features, **kwargs)
        if decoder is not None:
            features[DECODER_KEY] = decoder
        return features

    def pooling_forward(features: dict) -> dict:
        decoder = features.pop(DECODER_KEY, None)
        if decoder is None:
            return library_pooling(features)
        pooled = MaxPooledDecoder.apply(
            features["token_embeddings"], decoder.weight, decoder.bias, features["attention_mask"]
        )
        features["sentence_embedding"] = torch.log1p(torch.relu(pooled))
        return features

    transformer.forward, pooling.forward = transformer_forward, pooling_forward
    try:
        yield True
    finally:
        del transformer.forward, pooling.forward
