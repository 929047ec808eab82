"""The SPLADE encoder: masked-LM logits -> log(1 + ReLU) -> padding-masked max-pool.

A ko-sparse model *is* a ``sentence_transformers.SparseEncoder`` (``Transformer`` with the
``fill-mask`` task + ``SpladePooling(max, relu)``), so ``SparseEncoder(path)`` loads what ko-sparse
saves and encodes the same vectors. Special tokens never get weight: their MLM decoder bias is set to
``SPECIAL_TOKEN_BIAS``, which keeps their logits negative, so ReLU zeroes them in every runtime that
executes the weights (sentence-transformers, TorchScript, ML-Commons) without custom code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from sentence_transformers import SparseEncoder
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sparse_encoder.modules import SpladePooling
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

from ko_sparse.errors import ModelLoadError
from ko_sparse.model.hub import check_model_source

SPECIAL_TOKEN_BIAS = -1.0e4
DEFAULT_BASE_MODEL = "skt/A.X-Encoder-base"


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every id the tokenizer treats as special, including added ``<unusedN>`` tokens."""
    ids = set(tokenizer.all_special_ids)
    ids.update(i for i, token in tokenizer.added_tokens_decoder.items() if token.special)
    return sorted(ids)


def splade_max_pool(logits: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``max_l log(1 + ReLU(logits[:, l]))`` over non-padding positions, ``[B, L, V] -> [B, V]``.

    ReLU and log1p are monotone, so they commute with max: pooling first runs the two element-wise
    functions on ``[B, V]`` instead of ``[B, L, V]``. The values equal ``SpladePooling(max, relu)``.
    """
    padding = ~attention_mask.bool().unsqueeze(-1)
    # without autograd the [B, L, V] logits are ours to overwrite: no second copy of the largest tensor
    fill = logits.masked_fill_ if not logits.requires_grad else logits.masked_fill
    pooled = fill(padding, float("-inf")).amax(dim=1)
    return torch.log1p(torch.relu(pooled))


def suppress_special_tokens(mlm: PreTrainedModel, token_ids: list[int]) -> None:
    """Give ``token_ids`` a large negative decoder bias so their SPLADE weight is always 0."""
    decoder = mlm.get_output_embeddings()
    bias = getattr(decoder, "bias", None)
    if bias is None:
        raise ModelLoadError(
            f"{type(mlm).__name__}'s MLM decoder has no bias, so special tokens cannot be suppressed "
            "in the weights; choose a base model whose decoder has a bias (BERT, ModernBERT, RoBERTa)."
        )
    with torch.no_grad():
        bias[token_ids] = SPECIAL_TOKEN_BIAS


def is_saved_encoder(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a saved sentence-transformers model (``modules.json``)."""
    return (Path(path) / "modules.json").is_file()


def _check_masked_lm(base_model: str, setting: str) -> None:
    check_model_source(base_model, setting)
    try:
        config = AutoConfig.from_pretrained(base_model)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"{setting}={base_model!r} could not be loaded: it is not a local model directory and "
            f"the Hugging Face Hub did not provide it ({error.__class__.__name__}: {error})."
        ) from error
    if type(config) not in MODEL_FOR_MASKED_LM_MAPPING:
        raise ModelLoadError(
            f"{setting}={base_model!r} is a {config.model_type!r} model without a masked-LM head; "
            "SPLADE needs MLM logits (e.g. ModernBERT, BERT, RoBERTa, XLM-R)."
        )


def load_encoder(
    name_or_path: str | os.PathLike,
    max_length: int | None = None,
    attn_implementation: str | None = None,
    setting: str = "model.base_model",
) -> SparseEncoder:
    """Load a saved ko-sparse / SparseEncoder model, or build a fresh one from any HF masked LM.

    ``setting`` names the option the path came from, for error messages.
    """
    name_or_path = str(name_or_path)
    model_kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if is_saved_encoder(name_or_path):
        encoder = SparseEncoder(name_or_path, device="cpu", model_kwargs=model_kwargs)
        _check_splade_layout(encoder, name_or_path)
        if max_length is not None:
            encoder.max_seq_length = max_length
    else:
        _check_masked_lm(name_or_path, setting)
        transformer = Transformer(
            name_or_path, transformer_task="fill-mask", max_seq_length=max_length, model_kwargs=model_kwargs
        )
        encoder = SparseEncoder(modules=[transformer, SpladePooling("max", "relu")], device="cpu")
    suppress_special_tokens(mlm_of(encoder), special_token_ids(encoder.tokenizer))
    return encoder


def _check_splade_layout(encoder: SparseEncoder, path: str) -> None:
    modules = list(encoder)
    pooling = modules[-1] if modules else None
    if (
        len(modules) != 2
        or getattr(modules[0], "transformer_task", None) != "fill-mask"
        or not isinstance(pooling, SpladePooling)
        or pooling.pooling_strategy != "max"
        or pooling.activation_function != "relu"
    ):
        raise ModelLoadError(
            f"{path} is a SparseEncoder but not a max-pooled SPLADE model "
            f"(found {[type(m).__name__ for m in modules]}); "
            "ko-sparse needs Transformer(fill-mask) + SpladePooling(max, relu)."
        )


def mlm_of(encoder: SparseEncoder) -> PreTrainedModel:
    """The Hugging Face masked-LM inside an encoder."""
    return encoder[0].auto_model


def masked_lms(model: torch.nn.Module) -> list[PreTrainedModel]:
    """Every masked LM inside ``model``: one for a SPLADE encoder, the document side's in a doc-only Router."""
    return [m.auto_model for m in model.modules() if isinstance(m, Transformer) and m.transformer_task == "fill-mask"]


def freeze_vocabulary(encoder: SparseEncoder) -> int:
    """Stop training the per-id parameters (input embeddings, MLM decoder weight and bias); returns how
    many were frozen.

    What stays trainable is shared by all ids (the layers and the MLM head's transform). Trained on a
    small corpus, the per-id parameters of the ids it never contains only ever get the sparsity
    penalty's gradient, so those ids die: a text made of them loses its own tokens.
    """
    parameters = vocabulary_parameters(mlm_of(encoder))
    for parameter in parameters:
        parameter.requires_grad_(False)
    return sum(parameter.numel() for parameter in parameters)


def vocabulary_parameters(mlm: PreTrainedModel) -> list[torch.nn.Parameter]:
    """The per-id parameters of a masked LM: input embeddings and the MLM decoder (tied ones once)."""
    parameters = [mlm.get_input_embeddings().weight, *mlm.get_output_embeddings().parameters()]
    return list({id(parameter): parameter for parameter in parameters}.values())
