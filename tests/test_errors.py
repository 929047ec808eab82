"""One error hierarchy, one CLI handler: every ko-sparse error is a KoSparseError, and any command shows one
as ``Error: <message>`` with its exit code."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import click
import pytest
from click.testing import CliRunner

import ko_sparse
from ko_sparse.cli.main import COMMANDS, cli
from ko_sparse.errors import ClusterError, ConfigError, DataError, Interrupted, KoSparseError
from ko_sparse.export.package import MANIFEST, Artifact, Manifest


def test_every_ko_sparse_exception_is_a_ko_sparse_error():
    names = [info.name for info in pkgutil.walk_packages(ko_sparse.__path__, "ko_sparse.")]
    classes = {
        f"{value.__module__}.{value.__qualname__}": value
        for module in map(importlib.import_module, names)
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__.startswith("ko_sparse")
    }
    assert len(classes) >= 16
    assert [name for name, value in classes.items() if not issubclass(value, KoSparseError)] == []


def leaf_commands() -> list[list[str]]:
    """The argument path of every command (``data build``, ``search`` ...)."""
    paths = []
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        subcommands = command.commands if isinstance(command, click.Group) else {"": command}
        paths += [[name, sub] if sub else [name] for sub in subcommands]
    return paths


@pytest.mark.parametrize("path", leaf_commands(), ids=" ".join)
@pytest.mark.parametrize(
    ("error", "exit_code"), [(ConfigError, 2), (DataError, 2), (ClusterError, 1), (Interrupted, 1)]
)
def test_a_ko_sparse_error_in_any_command_is_one_line_with_its_exit_code(monkeypatch, path, error, exit_code):
    command = cli.get_command(click.Context(cli), path[0])
    for name in path[1:]:
        command = command.commands[name]

    def fail(**_):
        raise error("corpus.jsonl line 3: no text")

    monkeypatch.setattr(command, "params", [])
    monkeypatch.setattr(command, "callback", fail)
    result = CliRunner().invoke(cli, path)
    assert result.exit_code == exit_code
    assert result.output == "Error: corpus.jsonl line 3: no text\n"


@pytest.mark.parametrize(("change", "key"), [({"colour": "blue"}, "'colour'"), ({"mode": None}, "'mode'")])
def test_a_package_json_with_an_unknown_or_missing_key_is_named(tmp_path, change, key):
    artifact = Artifact("model.zip", "config.json", "SPARSE_ENCODING", "m", "d", 1, "0" * 64)
    Manifest("m", "bi", "outputs/tiny/best", 64, 0.0, [artifact], "ok").save(tmp_path)
    data = json.loads((tmp_path / MANIFEST).read_text())
    data.update(change)
    (tmp_path / MANIFEST).write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    result = CliRunner().invoke(cli, ["register", "--host", "http://127.0.0.1:9", "--model", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1 and str(tmp_path / MANIFEST) in lines[0] and key in lines[0]
    with pytest.raises(DataError, match=key):
        Manifest.load(tmp_path)
