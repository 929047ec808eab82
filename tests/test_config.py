"""Config files, presets and --set overrides."""

from __future__ import annotations

import pytest

from ko_sparse.train.config import ConfigError, TrainConfig, load_config, preset_path


def test_defaults_are_the_notebook_recipe():
    config = load_config()
    assert config.model.base_model == "skt/A.X-Encoder-base"
    assert (
        config.model.max_length,
        config.training.batch_size,
        config.training.gradient_accumulation_steps,
    ) == (64, 64, 2)
    assert (config.training.epochs, config.training.learning_rate, config.training.warmup_ratio) == (
        25,
        3e-6,
        0.15,
    )
    assert (config.training.max_grad_norm, config.training.weight_decay, config.training.seed) == (
        1.0,
        0.01,
        42,
    )
    loss = config.loss
    assert (
        loss.lambda_self,
        loss.lambda_synonym,
        loss.lambda_margin,
        loss.lambda_flops,
        loss.target_margin,
    ) == (4.0, 10.0, 2.5, 8e-3, 1.5)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  learning_rate: 3e-6\n  batch_size: 8\nloss:\n  lambda_flops: 1\n")
    config = load_config(path, ["training.batch_size=4", "eval.k_values=[1, 3]", "output_dir=/x"])
    assert config.training.learning_rate == 3e-6  # YAML 1.1 reads 3e-6 as a string
    assert config.training.batch_size == 4
    assert config.loss.lambda_flops == 1.0 and isinstance(config.loss.lambda_flops, float)
    assert config.eval.k_values == [1, 3]
    assert config.output_dir == "/x"


def test_round_trip(tmp_path):
    config = load_config(preset_path("tiny"))
    config.save(tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config
    assert isinstance(config, TrainConfig)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["training.lr=1"], r"unknown setting\(s\) \['training.lr'\]"),
        (["training.batch_size=big"], r"training.batch_size='big': expected int"),
        (["training.epochs=null"], "training.epochs may not be null"),
        (["training.learning_rate=fast"], r"training.learning_rate='fast': expected a number"),
        (["loss.flops_on=queries"], "flops_on"),
        (["nonsense"], "expected section.key=value"),
    ],
)
def test_bad_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("training: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_path("huge")


def test_a_preset_over_a_config_keeps_the_recipe_at_the_presets_scale(tmp_path):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "configs" / "retrieval.yaml"
    config = load_config(recipe, ["data.train=x"], preset=preset_path("tiny"))
    assert config.loss.recipe == "retrieval" and config.data.eval_retrieval == "data/retrieval/eval"
    assert (
        config.model.base_model == "tiny:64x2"
        and config.training.learning_rate == load_config(preset_path("tiny")).training.learning_rate
    )
    assert config.data.train == "x"


def test_values_are_typed_by_their_fields_inside_lists_too():
    assert load_config(None, ["eval.k_values=[1, 3]", "model.attn_implementation=null"]).eval.k_values == [1, 3]
    with pytest.raises(ConfigError, match=r"eval.k_values\[1\]='ten': expected int"):
        load_config(None, ["eval.k_values=[5, ten]"])
    with pytest.raises(ConfigError, match=r"eval.k_values\[0\]=True: expected int"):
        load_config(None, ["eval.k_values=[true]"])
    with pytest.raises(ConfigError, match=r"training.trainer_args=\[1\]: expected a mapping"):
        load_config(None, ["training.trainer_args=[1]"])
    assert load_config(None, ["training.compile=true"]).training.compile is True
