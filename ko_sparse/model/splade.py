"""The SPLADE encoder: masked-LM logits -> log(1 + ReLU) -> padding-masked max-pool.

A ko-sparse model *is* a ``sentence_transformers.SparseEncoder`` (``Transformer`` with the
``fill-mask`` task + ``SpladePooling(max, relu)``), so ``SparseEncoder(path)`` loads what ko-sparse
saves and encodes the same vectors. Special tokens never get weight: their MLM decoder bias is set to
``SPECIAL_TOKEN_BIAS``, which keeps their logits negative, so ReLU zeroes them in every runtime that
executes the weights (sentence-transformers, TorchScript, ML-Commons) without custom code.

A saved SparseEncoder, by folder or Hub id, is loaded by sentence-transformers itself and left as it
is (:func:`load_sparse_encoder`): whether a name is one is read from its ``modules.json`` as the library
resolves it (a folder, or the Hub / its cache), never from a local path alone.
"""

from __future__ import annotations

import os

import torch
from sentence_transformers import SparseEncoder
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sparse_encoder.modules import SpladePooling
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

from ko_sparse.errors import ModelLoadError
from ko_sparse.model.hub import check_model_source, model_file

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


def is_saved_encoder(name: str | os.PathLike) -> bool:
    """True when model ``name`` (a folder or a Hub id) is a saved sentence-transformers model (``modules.json``)."""
    return model_file(str(name), "modules.json") is not None


def _check_masked_lm(base_model: str, setting: str) -> None:
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
    """A SPLADE encoder to train or rank with: a saved ko-sparse / SparseEncoder model (folder or Hub id) of
    the max-pooled SPLADE layout, or a fresh one built on any HF masked LM; special tokens suppressed.

    ``setting`` names the option the path came from, for error messages.
    """
    name_or_path = str(name_or_path)
    check_model_source(name_or_path, setting)
    if is_saved_encoder(name_or_path):
        encoder = load_sparse_encoder(name_or_path, setting, attn_implementation)
        _check_splade_layout(encoder, name_or_path)
        if max_length is not None:
            encoder.max_seq_length = max_length
    else:
        encoder = splade_on_masked_lm(name_or_path, setting, max_length, attn_implementation)
    suppress_special_tokens(mlm_of(encoder), special_token_ids(encoder.tokenizer))
    return encoder


def load_sparse_encoder(name: str, setting: str, attn_implementation: str | None = None) -> SparseEncoder:
    """``SparseEncoder(name)``: a saved model (folder or Hub id) as sentence-transformers loads it, unchanged."""
    model_kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        return SparseEncoder(name, device="cpu", model_kwargs=model_kwargs)
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(
            f"{setting}={name!r} could not be loaded as a sentence-transformers SparseEncoder "
            f"({error.__class__.__name__}: {error})"
        ) from error


def splade_on_masked_lm(
    name: str, setting: str, max_length: int | None = None, attn_implementation: str | None = None
) -> SparseEncoder:
    """A SPLADE encoder (``SpladePooling(max, relu)``) built on masked LM ``name``, which is no SparseEncoder."""
    _check_masked_lm(name, setting)
    model_kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    transformer = Transformer(name, transformer_task="fill-mask", max_seq_length=max_length, model_kwargs=model_kwargs)
    return SparseEncoder(modules=[transformer, SpladePooling("max", "relu")], device="cpu")


def splade_modules(modules: list[torch.nn.Module]) -> bool:
    """True for a vocabulary-sized SPLADE pipeline: a fill-mask transformer, then ``SpladePooling``."""
    return (
        len(modules) == 2
        and getattr(modules[0], "transformer_task", None) == "fill-mask"
        and isinstance(modules[1], SpladePooling)
    )


def is_max_splade(modules: list[torch.nn.Module]) -> bool:
    """True when the modules compute what ko-sparse's own encoding loop and export compute:
    ``max_l log(1 + ReLU(logits))`` over a fill-mask transformer."""
    return splade_modules(modules) and modules[1].pooling_strategy == "max" and modules[1].activation_function == "relu"


def own_loop_fits(encoder: SparseEncoder) -> bool:
    """True when ko-sparse's loop (``encode_sparse``) and export give ``encoder``'s own vectors: the max-pooled
    SPLADE layout, no ``max_active_dims`` and no prompts; otherwise the library's ``encode`` must run."""
    return is_max_splade(list(encoder)) and encoder.max_active_dims is None and not any(encoder.prompts.values())


def _check_splade_layout(encoder: SparseEncoder, path: str) -> None:
    modules = list(encoder)
    if not is_max_splade(modules):
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
