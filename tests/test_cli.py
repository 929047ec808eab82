"""The ko-sparse command line: help texts, expand, and errors that name what is wrong."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli

README = Path(__file__).resolve().parents[1] / "README.md"
CLUSTER_COMMANDS = ["register", "bench", "index", "search"]  # every command that talks to a cluster
BUNDLED_CORPUS = Path(__file__).resolve().parents[1] / "ko_sparse/resources/data/retrieval/miracl-ko-dev-judged"


def command_paths(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of the CLI, e.g. ("data", "build")."""
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def find_command(path: tuple[str, ...]) -> click.Command:
    command = cli
    for name in path:
        command = command.commands[name]
    return command


def test_the_cli_has_the_pipeline_commands():
    assert {"train", "expand", "data", "package", "register", "bench", "index", "search"} <= {
        path[0] for path in command_paths()
    }


@pytest.mark.parametrize("command", [(), *command_paths()], ids=lambda path: " ".join(path) or "ko-sparse")
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    if command and not isinstance(find_command(command), click.Group):
        assert "Example" in result.output


def readme_invocations() -> list[tuple[tuple[str, ...], str, str]]:
    """(command path, option, line) for every ``--option`` a README command line shows."""
    found = []
    paths = sorted(command_paths(), key=len, reverse=True)
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        match = re.search(r"ko-sparse ((?:[a-z-]+ ?){1,2})(.*)", line)
        if not match:
            continue
        words = match.group(1).split()
        path = next((p for p in paths if tuple(words[: len(p)]) == p), None)
        if path is None:
            continue
        options = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", " ".join(words[len(path) :]) + " " + match.group(2))
        found.extend((path, option, line.strip()) for option in options)
    return found


def test_the_readme_shows_commands():
    assert len(readme_invocations()) > 20


@pytest.mark.parametrize(("path", "option", "line"), readme_invocations(), ids=lambda v: str(v)[:60])
def test_every_option_the_readme_shows_exists(path, option, line):
    command = find_command(path)
    names = {name for param in command.params for name in [*param.opts, *param.secondary_opts]} | {"--help"}
    assert option in names, f"README line {line!r}: `ko-sparse {' '.join(path)}` has no {option}"


@pytest.mark.parametrize("path", CLUSTER_COMMANDS)
def test_every_cluster_command_takes_the_same_connection_options(path):
    options = {name for param in find_command((path,)).params for name in param.opts}
    assert {"--host", "--user", "--ca-certs", "--insecure"} <= options


@pytest.mark.parametrize(
    "arguments",
    [
        ["register", "--model", "."],
        ["bench", "--engine", "opensearch", "--systems", "bm25", "--index", "medical", "--output", "{out}"],
        ["index", "--index", "docs", "--corpus", str(BUNDLED_CORPUS), "--model", ".", "--output", "{out}"],
        ["search", "--index", "docs", "당뇨병 치료"],
    ],
    ids=["register", "bench", "index", "search"],
)
def test_credentials_in_host_are_refused_before_anything_is_sent(arguments, tmp_path):
    host = "https://admin:s3cret-pw@127.0.0.1:1"
    arguments = [argument.format(out=tmp_path) for argument in arguments]
    result = CliRunner().invoke(cli, [*arguments, "--host", host])
    assert result.exit_code == 2, result.output
    assert "must not contain credentials" in result.output
    assert "s3cret-pw" not in result.output and "admin" not in result.output
    assert not list(tmp_path.iterdir())  # nothing saved


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
    assert "give --config FILE, --preset NAME, or both" in result.output


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


@pytest.mark.parametrize("texts", [[""], ["   "], ["당뇨병", "\t"]], ids=["empty", "spaces", "second"])
def test_expand_refuses_empty_text_before_loading_the_model(texts, tmp_path):
    result = CliRunner().invoke(cli, ["expand", *texts, "--model", str(tmp_path / "never-loaded")])
    assert result.exit_code == 2
    assert f"TEXT #{len(texts)} is empty" in result.output
    assert "could not be loaded" not in result.output


def readme_command_lines(command: str) -> list[str]:
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line.startswith(f"ko-sparse {command}")]


def test_the_readme_says_how_to_run_ko_sparse_before_its_first_command():
    text = README.read_text(encoding="utf-8")
    first_command = re.search(r"^ko-sparse ", text, flags=re.MULTILINE).start()
    assert -1 < text.find("source .venv/bin/activate") < first_command
    assert -1 < text.find(".venv/bin/ko-sparse") < first_command


@pytest.mark.parametrize("line", readme_command_lines("bench"), ids=lambda line: line[16:60])
def test_every_readme_bench_command_passes_the_systems_check(line):
    from ko_sparse.cli.bench import chosen_systems

    words = shlex.split(line)
    systems = next((words[i + 1] for i, word in enumerate(words) if word == "--systems"), "bm25,sparse,hybrid")
    models = tuple(words[i + 1] for i, word in enumerate(words) if word == "--model")
    if "--list" not in words:
        chosen_systems(systems, models)


def test_the_cpu_build_of_torch_is_documented_and_installable_with_make(tmp_path):
    text = README.read_text(encoding="utf-8")
    url = "https://download.pytorch.org/whl/cpu"
    assert f"make demo TORCH_INDEX_URL={url}" in text and f"pip install torch --index-url {url}" in text
    root = README.parent
    plan = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path}/venv", f"TORCH_INDEX_URL={url}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    torch_line = plan.index(f"{tmp_path}/venv/bin/pip install torch --index-url {url}")
    assert torch_line < next(i for i, line in enumerate(plan) if 'pip install -e ".[dev]"' in line)
    default = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path}/venv"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert "--index-url" not in default  # the default stays PyPI's torch


SHARED_OPTIONS = {
    "model_path": "--model",
    "models": "--model",
    "max_length": "--max-length",
    "query_length": "--query-length",
    "as_json": "--json",
    "output_dir": "--output",
}
ENCODING_COMMANDS = [("bench",), ("expand",), ("index",), ("package",), ("search",)]


@pytest.mark.parametrize("path", ENCODING_COMMANDS, ids=" ".join)
def test_every_encoding_command_takes_the_shared_model_and_length_options(path):
    options = {param.name: param for param in find_command(path).params if isinstance(param, click.Option)}
    lengths = [options[name] for name in ("max_length", "query_length") if name in options]
    assert lengths, "a command that encodes takes --max-length or --query-length"
    for option in lengths:
        assert option.opts == [SHARED_OPTIONS[option.name]]
        assert not isinstance(option.default, int)  # no number of its own: the model's recorded length applies
        assert isinstance(option.type, click.IntRange) and option.type.min == 8
    for name in ("as_json", "output_dir", "model_path", "models"):
        if name in options:
            assert options[name].opts == [SHARED_OPTIONS[name]]
            assert options[name].is_flag == (name == "as_json")
