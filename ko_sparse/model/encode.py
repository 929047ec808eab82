"""Batched SPLADE encoding: tokenised ahead, length-sorted batches under a token budget, sparse output.

``encode_sparse`` returns the same vectors as ``sentence_transformers.SparseEncoder.encode`` (within
float rounding), as a scipy CSR matrix on the host, which is what indexing needs. We keep our own
loop because the library's is measurably slower for that use, for reasons it has no option to change:

* it tokenises and pads each batch in the calling thread (``tokenizer(...)`` then Python-list padding),
  serially with the forward passes: on a GPU that host work took longer than the forwards themselves.
  Here one background thread tokenises chunks of texts ahead (bounded prefetch), pads them with numpy
  into preallocated arrays and pins them, while the main thread copies them (``non_blocking``) and runs
  the model;
* it sorts by characters and cuts fixed ``batch_size`` batches; here batches are sorted by tokens and
  cut by a token budget (``max_tokens`` = rows x padded length, at most ``batch_size`` rows), so short
  texts go in larger batches and the budget, not the row count, bounds memory;
* its pooling runs ReLU and log1p over the ``[B, L, V]`` logits; here the logits are max-pooled first
  (``splade_max_pool``: the two monotone functions then run on ``[B, V]``);
* with the output on the host it copies each batch's dense or COO tensor back; here the non-zeros are
  selected on the device and only (values, column ids, row counts) are copied, on a side CUDA stream
  while the next batch's forward runs.

An encoder that computes something else (sum pooling, ``log1p_relu``, ``max_active_dims``, prompts: see
``own_loop_fits``) is encoded by the library's own ``encode_document`` instead (``library_encode``), so
every model gives its own vectors.

Precision: on CUDA, when the GPU supports bf16 (``torch.cuda.is_bf16_supported()``), the forward runs
under bf16 autocast (``bf16=True``, the default; the pooled weights are float32 either way); pass
``bf16=False`` for float32. The CPU always runs float32. The batches run through the PyTorch model,
or through the same model exported to ONNX and run by ONNX Runtime (``onnx=``): same tokenisation,
batches, order and output.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from sentence_transformers import SparseEncoder
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ko_sparse.model.max_pooled_decoder import MaxPooledDecoder, decoder_bypassed
from ko_sparse.model.onnx_runtime import OnnxSparseModel
from ko_sparse.model.splade import mlm_of, own_loop_fits, splade_max_pool

CHUNK_TEXTS = 2048  # the most texts tokenised and length-sorted together; the first chunks are smaller
PREFETCH_CHUNKS = 2  # chunks tokenised ahead of the forward passes


def splade_forward(mlm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """SPLADE vectors ``[B, V]`` of a tokenised batch.

    With autograd on (training), the decoder and max-pool run fused (``MaxPooledDecoder``): same
    values and gradients, without keeping or back-propagating the ``[B, L, V]`` logits.
    """
    if torch.is_grad_enabled():
        with decoder_bypassed(mlm) as decoder:
            if decoder is not None:
                hidden = mlm(input_ids=input_ids, attention_mask=attention_mask).logits
                pooled = MaxPooledDecoder.apply(hidden, decoder.weight, decoder.bias, attention_mask)
                return torch.log1p(torch.relu(pooled))
    logits = mlm(input_ids=input_ids, attention_mask=attention_mask).logits
    return splade_max_pool(logits, attention_mask)


@dataclass
class Batch:
    """Padded token ids and attention mask of some texts; ``rows``: their positions in the input."""

    rows: np.ndarray
    input_ids: np.ndarray | torch.Tensor
    attention_mask: np.ndarray | torch.Tensor


def plan_batches(lengths: np.ndarray, batch_size: int, max_tokens: int) -> list[np.ndarray]:
    """Indices into ``lengths``, longest first, cut into batches of at most ``batch_size`` rows whose
    rows x longest length stays within ``max_tokens`` (a text longer than the budget gets a batch alone)."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        rows = max(1, min(batch_size, max_tokens // max(int(lengths[order[start]]), 1)))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def pad(token_ids: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``token_ids`` right-padded into int64 ``[B, longest]`` arrays: ids and attention mask."""
    lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
    mask = np.arange(lengths.max(initial=0)) < lengths[:, None]
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    ids[mask] = np.fromiter(itertools.chain.from_iterable(token_ids), dtype=np.int64, count=int(lengths.sum()))
    return ids, mask.astype(np.int64)


def chunk_bounds(count: int, first: int, largest: int = CHUNK_TEXTS) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of chunks covering ``count`` texts: ``first`` texts, then twice as many each time
    up to ``largest``, so the first forward pass waits only for a small chunk's tokenisation."""
    start, size = 0, max(1, first)
    while start < count:
        yield start, min(start + size, count)
        start += size
        size = min(2 * size, largest)


def prefetched(make: Callable, items: Iterable, ahead: int = PREFETCH_CHUNKS) -> Iterator:
    """``make(item)`` for each item, computed in one background thread at most ``ahead`` items ahead of
    the consumer. An exception in ``make`` is raised here, in the consumer; closing the iterator cancels
    what was not started."""
    items = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ko-sparse-tokenise") as pool:
        pending = deque(pool.submit(make, item) for item in itertools.islice(items, ahead))
        try:
            while pending:
                result = pending.popleft().result()
                pending.extend(pool.submit(make, item) for item in itertools.islice(items, 1))
                yield result
        finally:
            for future in pending:
                future.cancel()


def encode_sparse(
    encoder: SparseEncoder,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
    show_progress: bool = False,
    onnx: OnnxSparseModel | None = None,
    *,
    max_tokens: int | None = None,
    bf16: bool = True,
    chunk_texts: int = CHUNK_TEXTS,
) -> sp.csr_matrix:
    """Encode ``texts`` into a float32 CSR matrix ``[N, vocab]``, rows in input order.

    ``batch_size``: the most texts per forward pass; ``max_tokens``: the most rows x padded length per
    pass (default ``batch_size`` x ``max_length``: full batches even of texts at the full length).
    ``chunk_texts``: the most texts tokenised and length-sorted together by the background thread.
    ``bf16``: on a CUDA GPU that supports it, run the forward under bf16 autocast. With ``onnx`` (the
    encoder's model exported to ONNX), ONNX Runtime runs the batches instead of torch.
    """
    texts = list(texts)
    if onnx is None and not own_loop_fits(encoder):
        return library_encode(encoder, texts, batch_size, max_length, show_progress)
    mlm = mlm_of(encoder)
    device = next(mlm.parameters()).device
    tokenizer = encoder.tokenizer
    max_length = max_length or encoder.max_seq_length
    max_tokens = max_tokens or batch_size * max_length
    pin = onnx is None and device.type == "cuda"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def prepare(bounds: tuple[int, int]) -> list[Batch]:
        """Tokenise a chunk (no padding), sort it by length and pad each batch (the background thread)."""
        start, end = bounds
        token_ids = tokenizer(texts[start:end], truncation=True, max_length=max_length)["input_ids"]
        lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
        batches = []
        for rows in plan_batches(lengths, batch_size, max_tokens):
            ids, mask = pad([token_ids[i] for i in rows], pad_id)
            if onnx is None:
                ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
                if pin:
                    ids, mask = ids.pin_memory(), mask.pin_memory()
            batches.append(Batch(rows + start, ids, mask))
        return batches

    # on a GPU the first chunk is small, so the first forward starts early; on the CPU tokenising is a
    # small share of the time, and one large chunk sorts (and pads) best
    first_chunk = 4 * batch_size if onnx is None and device.type == "cuda" else chunk_texts
    chunks = prefetched(prepare, chunk_bounds(len(texts), first_chunk, chunk_texts))
    batches = (batch for chunk in chunks for batch in chunk)
    if onnx is not None:
        run = ((batch, _nonzeros_numpy(onnx(batch.input_ids, batch.attention_mask))) for batch in batches)
    else:
        run = _torch_batches(mlm, device, batches)
    bf16 = bf16 and onnx is None and device.type == "cuda" and torch.cuda.is_bf16_supported()
    parts = []
    was_training = mlm.training
    mlm.eval()
    try:
        with (
            contextlib.closing(chunks),
            torch.inference_mode(),
            torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16),
            tqdm(total=len(texts), desc="Encoding", unit="text", disable=not show_progress) as progress,
        ):
            for batch, nonzeros in run:
                parts.append((batch.rows, *nonzeros))
                progress.update(len(batch.rows))
    finally:
        mlm.train(was_training)
    return _assemble(parts, len(texts), mlm.get_output_embeddings().out_features)


def library_encode(
    encoder: SparseEncoder,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
    show_progress: bool = False,
    query: bool = False,
) -> sp.csr_matrix:
    """``encoder.encode_document`` (``encode_query`` when ``query``) truncated at ``max_length``, as CSR."""
    texts = list(texts)
    if not texts:
        return sp.csr_matrix((0, mlm_of(encoder).get_output_embeddings().out_features), dtype=np.float32)
    encode = encoder.encode_query if query else encoder.encode_document
    kept = encoder.max_seq_length
    encoder.max_seq_length = max_length or kept
    try:
        vectors = encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_sparse_tensor=True,
            save_to_cpu=True,
        ).coalesce()
    finally:
        encoder.max_seq_length = kept
    rows, cols = vectors.indices().numpy()
    values = vectors.values().float().numpy()
    return sp.csr_matrix((values, (rows, cols)), shape=tuple(vectors.shape), dtype=np.float32)


def _torch_batches(
    mlm: PreTrainedModel, device: torch.device, batches: Iterable[Batch]
) -> Iterator[tuple[Batch, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Each batch with its non-zeros (values, column ids, row counts) on the host.

    On CUDA the next batch's forward is queued before the previous batch's non-zeros are selected, and
    the selection runs on a side stream, so the GPU keeps computing while the host waits for results."""
    side = torch.cuda.Stream(device) if device.type == "cuda" else None
    pending = None
    for batch in batches:
        input_ids = batch.input_ids.to(device, non_blocking=True)
        attention_mask = batch.attention_mask.to(device, non_blocking=True)
        vectors = splade_forward(mlm, input_ids, attention_mask)
        computed = None
        if side is not None:
            computed = torch.cuda.Event()
            computed.record()
        if pending is not None:
            yield pending[0], _nonzeros(*pending[1:], side)
        pending = (batch, vectors, computed)
    if pending is not None:
        yield pending[0], _nonzeros(*pending[1:], side)


def _nonzeros(
    vectors: torch.Tensor, computed: torch.cuda.Event | None, side: torch.cuda.Stream | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, column ids and per-row counts of the non-zero weights of ``[B, V]`` vectors, selected on
    their device (on ``side`` once ``computed`` has happened) and copied to the host."""
    with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
        if side is not None:
            side.wait_event(computed)
        rows, cols = vectors.nonzero(as_tuple=True)
        counts = torch.bincount(rows, minlength=vectors.shape[0])
        values = vectors[rows, cols].float()
        return values.cpu().numpy(), cols.int().cpu().numpy(), counts.cpu().numpy()


def _nonzeros_numpy(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same for ONNX Runtime's dense ``[B, V]`` numpy output."""
    matrix = sp.csr_matrix(vectors.astype(np.float32, copy=False))
    return matrix.data, matrix.indices, np.diff(matrix.indptr)


def _assemble(parts: list[tuple], count: int, vocab_size: int) -> sp.csr_matrix:
    """One CSR matrix, rows in input order, from the batches' (rows, values, column ids, row counts)."""
    if not parts:
        return sp.csr_matrix((count, vocab_size), dtype=np.float32)
    rows, values, cols, counts = (np.concatenate(column) for column in zip(*parts, strict=True))
    index_type = np.int32 if len(values) < 2**31 else np.int64  # scipy's own choice: no conversion pass
    indptr = np.zeros(len(counts) + 1, dtype=index_type)
    np.cumsum(counts, out=indptr[1:])
    in_batch_order = sp.csr_matrix((values, cols.astype(index_type, copy=False), indptr), shape=(count, vocab_size))
    return in_batch_order[np.argsort(rows)]
