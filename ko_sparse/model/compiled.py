"""Regional ``torch.compile`` of a masked LM: each transformer block compiled in place, one graph that every
block reuses.

The library's own switch (``TrainingArguments.torch_compile``) compiles the whole ``SparseEncoder``: the
fused max-pooled decoder's data-dependent backward breaks the graph, and every new padded length
recompiles it. Compiling the repeated block instead (what PyTorch's regional-compilation recipe does)
compiles one graph that every block reuses, with dynamic batch and sequence sizes, so a run compiles once
in seconds to a minute and never again; the embeddings, the MLM head and the decoder stay eager. One
block's code still specialises a few ways (the first block's missing norm, local or global attention, a
batch with or without padding, training or evaluation): up to ``RECOMPILE_LIMIT`` graphs, beyond
torch's default of 8, after which it would silently run the rest eagerly. Compiling the whole backbone as
one graph instead took over 5 minutes on an H200 with Inductor's C++ wrapper (16 cores), without finishing.
``Module.compile`` works in place: parameter names, ``state_dict`` and saved models are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from ko_sparse.model.splade import masked_lms

RECOMPILE_LIMIT = 64


def repeated_blocks(mlm: nn.Module) -> list[nn.Module]:
    """The transformer blocks of ``mlm``: the modules of a class it names in ``_no_split_modules`` (the
    Hugging Face convention for its layers) that occurs more than once, else the children of its longest
    ``ModuleList``."""
    names = set(getattr(mlm, "_no_split_modules", None) or ())
    named = [m for m in mlm.modules() if type(m).__name__ in names]
    blocks = [m for m in named if sum(type(other) is type(m) for other in named) > 1]
    if blocks:
        return blocks
    lists = [m for m in mlm.modules() if isinstance(m, nn.ModuleList)]
    return list(max(lists, key=len)) if lists else []


def compile_encoder(encoder: nn.Module) -> int:
    """Compile each transformer block of every masked LM in ``encoder`` (a SPLADE encoder, or a doc-only
    Router's document side) in place, with dynamic shapes; returns how many were compiled. A block compiled
    before is left as it is."""
    blocks = [block for mlm in masked_lms(encoder) for block in repeated_blocks(mlm)]
    dynamo = torch._dynamo.config
    limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"  # torch < 2.7's name
    setattr(dynamo, limit, max(getattr(dynamo, limit), RECOMPILE_LIMIT))  # process-wide, only ever raised
    for block in blocks:
        if getattr(block, "_compiled_call_impl", None) is None:
            block.compile(dynamic=True)
    return len(blocks)


def compile_supported(device: torch.device) -> bool:
    """Whether the default ``auto`` compiles: on CUDA devices (Triton kernels). On a CPU the compile costs
    minutes and buys little; ``compile: true`` still forces it."""
    return device.type == "cuda"
