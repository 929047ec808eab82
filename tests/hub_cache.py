"""Tiny random SparseEncoders written into a Hugging Face cache, to be loaded by Hub id offline.

The layout is the one ``huggingface_hub`` downloads into (``models--org--name/snapshots/<rev>/...`` and
``refs/main``), so the real resolution code runs (``hf_hub_download`` / ``try_to_load_from_cache`` under
``HF_HUB_OFFLINE=1``); only the download is absent. The vocabulary is not A.X's: a small WordPiece one
trained with ``tokenizers`` on the bundled paraKQC sentences (or a SentencePiece-style one whose token
strings collide), under a random 1-layer BERT masked LM.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from sentence_transformers import SparseEncoder
from sentence_transformers.base.modules import Router, Transformer
from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding, SpladePooling
from tokenizers import BertWordPieceTokenizer, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast, PreTrainedTokenizerFast

from ko_sparse.model.idf import idf_vector
from ko_sparse.resources.parakqc import read_parakqc_sets

REVISION = "0123456789abcdef0123456789abcdef01234567"
VOCABULARY_SIZE = 1500
BI = "ko-sparse-tests/splade-wordpiece"  # Transformer(fill-mask) + SpladePooling(max, relu)
TOP_K = "ko-sparse-tests/splade-top-k"  # log1p_relu activation and max_active_dims: the library's encode runs
ROUTER = "ko-sparse-tests/splade-inference-free"  # the multilingual-v1 layout: IDF query side, SPLADE documents
METASPACE = "ko-sparse-tests/splade-metaspace"  # ▁서울 and 서울 both decode to 서울: ML-Commons would merge them
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def sentences() -> list[str]:
    return [sentence for group in read_parakqc_sets() for sentence in group]


def wordpiece_tokenizer(folder: Path) -> BertTokenizerFast:
    """A WordPiece vocabulary trained on the bundled sentences."""
    trainer = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    trainer.train_from_iterator(sentences(), vocab_size=VOCABULARY_SIZE, min_frequency=1)
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(folder))
    return BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=False, strip_accents=False)


def metaspace_tokenizer() -> PreTrainedTokenizerFast:
    """A SentencePiece-style vocabulary: each word of some bundled sentences with and without ``▁``."""
    words = sorted({word for sentence in sentences()[:50] for word in sentence.split()})
    vocabulary = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words, *(f"▁{w}" for w in words)])}
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    names = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
    return PreTrainedTokenizerFast(tokenizer_object=backend, **dict(zip(names, SPECIAL_TOKENS, strict=True)))


def random_mlm(tokenizer: PreTrainedTokenizerFast, folder: Path) -> Path:
    """A random 1-layer BERT masked LM over ``tokenizer``'s vocabulary, saved with it in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertForMaskedLM(config).save_pretrained(folder)
    return folder


def cache_snapshot(cache: Path, repo_id: str) -> Path:
    """The snapshot folder of ``repo_id`` in ``cache`` (``refs/main`` points at it)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return repo / "snapshots" / REVISION


def write_hub_models(cache: Path, work: Path) -> dict[str, Path]:
    """Write the fixture models into ``cache``; returns each id's snapshot folder."""
    mlm = random_mlm(wordpiece_tokenizer(work / "wordpiece"), work / "mlm")

    def splade(activation: str = "relu", folder: Path = mlm) -> list[torch.nn.Module]:
        return [Transformer(str(folder), transformer_task="fill-mask"), SpladePooling("max", activation)]

    models = {
        BI: SparseEncoder(modules=splade(), device="cpu"),
        TOP_K: SparseEncoder(modules=splade("log1p_relu"), device="cpu", max_active_dims=8),
        METASPACE: SparseEncoder(
            modules=splade(folder=random_mlm(metaspace_tokenizer(), work / "metaspace")), device="cpu"
        ),
    }
    document = splade()
    tokenizer = document[0].tokenizer
    query = SparseStaticEmbedding(tokenizer=tokenizer, weight=torch.from_numpy(idf_vector(tokenizer, sentences())))
    router = Router.for_query_document(query_modules=[query], document_modules=document)
    models[ROUTER] = SparseEncoder(modules=[router], device="cpu")
    snapshots = {}
    for repo_id, model in models.items():
        snapshots[repo_id] = cache_snapshot(cache, repo_id)
        model.save(str(snapshots[repo_id]))
    shutil.rmtree(work)
    return snapshots
