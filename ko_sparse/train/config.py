"""Training configuration: YAML files with ``--set section.key=value`` overrides.

Defaults are the v21.3 notebook's recipe. ``configs/*.yaml`` and the bundled presets
(``ko_sparse/presets``) hold complete experiment specs; the config actually used is saved next to
the model. :mod:`ko_sparse.train.arguments` maps it onto ``SparseEncoderTrainingArguments``; any other
field of those arguments can be given under ``training.trainer_args`` (e.g.
``--set training.trainer_args.report_to=[tensorboard]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from ko_sparse.errors import ConfigError
from ko_sparse.losses.config import LossConfig
from ko_sparse.model.splade import DEFAULT_BASE_MODEL


@dataclass
class ModelConfig:
    base_model: str = DEFAULT_BASE_MODEL
    max_length: int = 64  # truncation while training
    # recorded with the saved model: what package, bench, index, search and expand truncate at (None: max_length)
    document_length: int | None = None
    query_length: int | None = None
    attn_implementation: str | None = None
    mode: str = "bi"  # bi: the model encodes queries and documents; doc-only: queries are IDF-weighted tokens
    idf_trainable: bool = False
    freeze_vocabulary: bool = False  # train the layers only, not the per-id embeddings and decoder rows

    def __post_init__(self) -> None:
        if self.mode not in ("bi", "doc-only"):
            raise ValueError(f"model.mode must be 'bi' or 'doc-only', got {self.mode!r}")


@dataclass
class DataConfig:
    train: str | None = None
    validation: str | None = None
    eval_pairs: str | None = None  # synonym ranking (notebook recipe)
    eval_retrieval: str | None = None  # held-out queries over their corpus, a BEIR folder (retrieval recipe)


@dataclass
class TrainingConfig:
    batch_size: int = 64
    gradient_accumulation_steps: int = 2
    epochs: int = 25
    max_steps: int | None = None
    learning_rate: float = 3e-6
    warmup_ratio: float = 0.15
    scheduler: str = "linear"
    max_grad_norm: float = 1.0
    weight_decay: float = 0.01
    seed: int = 42
    mixed_precision: str = "auto"
    save_steps: int = 500
    save_total_limit: int = 2
    log_steps: int = 10
    idf_learning_rate: float = 1e-3
    gradient_checkpointing: bool = False
    compile: bool | None = None  # torch.compile each transformer block; null (auto): on CUDA devices
    trainer_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    every_steps: int | None = None
    k_values: list[int] = field(default_factory=lambda: [5, 10, 20])
    num_distractors: int = 5000
    max_anchors: int | None = None
    max_length: int = 32
    batch_size: int = 256
    seed: int = 42


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "outputs/ko-sparse"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8")


PRESETS = ("tiny",)
EXPECTED = {float: "a number", list: "a list", dict: "a mapping"}  # what a wrong value's error asks for


def preset_path(name: str) -> Path:
    """The YAML file of a bundled preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (available: {', '.join(PRESETS)})")
    return Path(str(files("ko_sparse.presets").joinpath(f"{name}.yaml")))


def load_config(
    path: str | Path | None = None, overrides: list[str] = (), preset: str | Path | None = None
) -> TrainConfig:
    """Defaults, then the YAML file at ``path``, then a preset's file over it (a recipe at the preset's
    scale: ``--config configs/retrieval.yaml --preset tiny``), then ``section.key=value`` overrides."""
    values: dict[str, Any] = {}
    for layer in (path, preset):
        if layer is not None:
            _merge(values, _read_yaml(Path(layer)))
    for override in overrides:
        _apply_override(values, override)
    return _build(TrainConfig, values, "")


def _merge(values: dict[str, Any], layer: dict[str, Any]) -> None:
    """Section by section: a layer's keys replace the same keys of the layers below, others stay."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            _merge(values[key], value)
        else:
            values[key] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(values).__name__}")
    return values


def _apply_override(values: dict[str, Any], override: str) -> None:
    key, separator, raw = override.partition("=")
    if not separator or not key:
        raise ConfigError(f"--set {override!r}: expected section.key=value")
    node = values
    *sections, leaf = key.strip().split(".")
    for section in sections:
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {override!r}: {section!r} is not a section")
    node[leaf] = yaml.safe_load(raw)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {values!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {[f'{where}{k}' for k in unknown]}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where.rstrip('.') or 'config'}: {error}") from error


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` checked against its field's type (``X | None``, ``list[X]``, ``dict``, ``bool``, ``int``,
    ``str``); a float field also takes ints and YAML-1.1 strings such as ``3e-6``."""
    kinds = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if value is None:
        if NoneType in kinds:
            return None
        raise ConfigError(f"{name} may not be null")
    (kind,) = (option for option in kinds if option is not NoneType)
    container = get_origin(kind) or kind
    if container is list and isinstance(value, list):
        return [_coerce(item, get_args(kind)[0], f"{name}[{i}]") for i, item in enumerate(value)]
    if kind is float and not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    elif isinstance(value, container) and not (container is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{name}={value!r}: expected {EXPECTED.get(container, container.__name__)}")
