"""The ko-sparse command line: help texts, expand, and errors that name what is wrong."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli

COMMANDS = ["train", "expand"]


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    if command:
        assert "Example" in result.output


def test_expand_shows_weighted_tokens(tiny_encoder, tmp_path):
    tiny_encoder.save(str(tmp_path / "model"))
    result = CliRunner().invoke(cli, ["expand", "당뇨병 치료", "--model", str(tmp_path / "model"), "--top-k", "5"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("당뇨병 치료")
    assert len(lines) == 6
    weights = [float(line.split()[-1]) for line in lines[1:]]
    assert weights == sorted(weights, reverse=True) and weights[-1] > 0

    as_json = CliRunner().invoke(cli, ["expand", "당뇨병", "고혈압", "--model", str(tmp_path / "model"), "--json"])
    payload = json.loads(as_json.output)
    assert [item["text"] for item in payload] == ["당뇨병", "고혈압"]
    assert len(payload[0]["tokens"]) == 20


def test_train_needs_exactly_one_spec(tmp_path):
    result = CliRunner().invoke(cli, ["train"])
    assert result.exit_code == 2
    assert "exactly one of --config FILE or --preset NAME" in result.output


def test_train_reports_bad_settings_without_traceback(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  train: {tmp_path / 'missing.jsonl'}\nmodel:\n  base_model: 'tiny:32x1'\n")
    result = CliRunner().invoke(cli, ["train", "--config", str(config)])
    assert result.exit_code == 2
    assert "missing.jsonl: file not found" in result.output
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--set", "training.batchsize=3"])
    assert result.exit_code == 2
    assert "unknown setting(s) ['training.batchsize']" in result.output


def test_expand_reports_missing_model(tmp_path):
    result = CliRunner().invoke(cli, ["expand", "가", "--model", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert f"--model='{tmp_path / 'nothing'}' could not be loaded" in result.output
