"""Shared fixtures: small random models with the production vocabulary, built once per session."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ko_sparse.model.splade import load_encoder
from ko_sparse.model.tiny import TinyModelSpec, build_tiny_mlm
from ko_sparse.resources import TOKENIZER_DIR

KOREAN_SENTENCES = [
    "당뇨병 치료에 좋은 음식은 무엇인가요?",
    "고혈압 약은 언제 먹어야 하나요",
    "서울에서 부산까지 기차로 얼마나 걸려?",
    "메일을 다 지울까 안 읽은 것만 지울까?",
    "감기에 걸렸을 때는 충분히 쉬세요.",
]
SLOW_TIMEOUT_S = 1800  # a test marked slow may run this long; the others get pyproject's timeout


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give the slow tests pytest-timeout's longer limit (nothing to do without the plugin)."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep built-in data and tiny models out of the user's ~/.cache during tests."""
    cache = tmp_path_factory.mktemp("ko-sparse-cache")
    patcher = pytest.MonkeyPatch()
    patcher.setenv("KO_SPARSE_CACHE", str(cache))
    yield cache
    patcher.undo()


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


@pytest.fixture(scope="session")
def colliding_tokenizer() -> PreTrainedTokenizerFast:
    """A vocabulary where ids 1 (``▁서울``) and 2 (``서울``) both decode to ``서울``."""
    vocab = {"<unk>": 0, "▁서울": 1, "서울": 2, "부산": 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer ModernBERT masked LM (hidden 32) with the production tokenizer (no identity steps)."""
    return build_tiny_mlm(
        TinyModelSpec(hidden_size=32, num_layers=1, identity_steps=0), tmp_path_factory.mktemp("tiny-mlm")
    )


@pytest.fixture
def tiny_encoder(tiny_mlm_dir: Path):
    return load_encoder(tiny_mlm_dir, max_length=32)


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory, tiny_mlm_dir: Path) -> Path:
    """The random tiny encoder saved as a model folder (what ``ko-sparse train`` writes)."""
    path = tmp_path_factory.mktemp("model") / "tiny"
    load_encoder(tiny_mlm_dir).save(str(path))
    return path


@pytest.fixture(scope="session")
def hub_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face cache holding the three fixture models."""
    cache = tmp_path_factory.mktemp("hf-cache")
    from tests.hub_cache import write_hub_models

    write_hub_models(cache, tmp_path_factory.mktemp("hub-work"))
    return cache


@pytest.fixture
def offline_hub(hub_models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HF_HUB_CACHE`` = the fixture cache and ``HF_HUB_OFFLINE=1``, for this process and its children."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_models))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_models))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return hub_models
