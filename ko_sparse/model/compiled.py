"""``torch.compile`` of a masked LM in place: each transformer block (one graph every block reuses), or the
whole backbone.

The library's own switch (``TrainingArguments.torch_compile``) compiles the whole ``SparseEncoder``: the
fused max-pooled decoder's data-dependent backward breaks the graph, and every new padded length
recompiles it. Compiling the repeated block instead (what PyTorch's regional-compilation recipe does)
compiles one graph that every block reuses, with dynamic batch and sequence sizes, so a run compiles once
in seconds to a minute and never again; the embeddings, the MLM head and the decoder stay eager. One
block's code still specialises a few ways (the first block's missing norm, local or global attention, a
batch with or without padding, training or evaluation): up to ``RECOMPILE_LIMIT`` graphs, beyond
torch's default of 8, after which it would silently run the rest eagerly.
``Module.compile`` works in place: parameter names, ``state_dict`` and saved models are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

RECOMPILE_LIMIT = 64
SCOPES = ("blocks", "backbone")


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


def compile_masked_lm(mlm: nn.Module, scope: str = "blocks", options: dict | None = None) -> int:
    """Compile ``mlm``'s transformer in place, with dynamic shapes: each repeated block (``scope="blocks"``),
    or the whole backbone under the MLM head as one graph (``"backbone"``: a longer compile, but one Python
    call per forward instead of one per block, which counts when the host cannot keep the GPU busy).
    ``options``: Inductor's (``torch.compile(options=...)``), e.g. ``{"cpp_wrapper": True}`` to launch the
    kernels from C++. Returns how many modules were compiled; a module compiled before is left as it is."""
    if scope not in SCOPES:
        raise ValueError(f"compile scope {scope!r}: expected one of {', '.join(SCOPES)}")
    targets = repeated_blocks(mlm) if scope == "blocks" else [getattr(mlm, "base_model", mlm)]
    dynamo = torch._dynamo.config
    limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"  # torch < 2.7's name
    setattr(dynamo, limit, max(getattr(dynamo, limit), RECOMPILE_LIMIT))  # process-wide, only ever raised
    for target in targets:
        if getattr(target, "_compiled_call_impl", None) is None:
            target.compile(dynamic=True, options=options or None)
    return len(targets)


def compile_supported(device: torch.device) -> bool:
    """Whether the default ``auto`` compiles: on CUDA devices (Triton kernels). On a CPU the compile costs
    minutes and buys little; ``compile: true`` still forces it."""
    return device.type == "cuda"
