"""The random tiny base models: built once with a visible progress bar."""

from __future__ import annotations

from ko_sparse.model.tiny import TinyModelSpec, build_tiny_mlm


def test_building_shows_a_progress_bar(tmp_path, capsys):
    build_tiny_mlm(TinyModelSpec(hidden_size=16, num_layers=1, identity_steps=3), tmp_path)
    err = capsys.readouterr().err
    assert "Preparing the tiny base model (once, then cached)" in err and "3/3" in err
    assert (tmp_path / "config.json").is_file()
