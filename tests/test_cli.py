"""The ko-sparse command line: help texts, the documented command lines, expand, and errors that name what is
wrong."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAGES_WITH_COMMANDS = {"README.md", "training.md", "opensearch.md", "benchmarks.md"}
REPO_PATH = re.compile(r"^(?:configs|opensearch|benchmarks|ko_sparse|tests|docs|\.ci)/[\w./-]*[\w]$")
CLUSTER_COMMANDS = ["register", "bench", "index", "search"]  # every command that talks to a cluster
BUNDLED_CORPUS = Path(__file__).resolve().parents[1] / "ko_sparse/resources/data/retrieval/miracl-ko-dev-judged"


def command_paths(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of the CLI, e.g. ("data", "build")."""
    paths = []
    context = click.Context(group)
    for name in sorted(group.list_commands(context)):
        command = group.get_command(context, name)
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def find_command(path: tuple[str, ...]) -> click.Command:
    command = cli
    for name in path:
        command = command.get_command(click.Context(command), name)
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


def doc_lines(page: Path) -> list[str]:
    """The page's lines, with shell continuations (``\\`` at the end of a line) joined."""
    return page.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()


def doc_invocations() -> list[tuple[str, tuple[str, ...], str, str]]:
    """(page, command path, option, line) for every ``--option`` a command line in the README or docs/ shows."""
    found = []
    paths = sorted(command_paths(), key=len, reverse=True)
    for page in DOC_PAGES:
        for line in doc_lines(page):
            match = re.search(r"ko-sparse ((?:[a-z-]+ ?){1,2})(.*)", line)
            if not match:
                continue
            words = match.group(1).split()
            path = next((p for p in paths if tuple(words[: len(p)]) == p), None)
            if path is None:
                continue
            rest = " ".join(words[len(path) :]) + " " + match.group(2)
            options = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest)
            found.extend((page.name, path, option, line.strip()) for option in options)
    return found


def test_the_readme_and_every_docs_page_with_commands_show_them():
    invocations = doc_invocations()
    assert len(invocations) > 20
    assert {page for page, *_ in invocations} >= PAGES_WITH_COMMANDS


@pytest.mark.parametrize(("page", "path", "option", "line"), doc_invocations(), ids=lambda v: str(v)[:60])
def test_every_option_the_docs_show_exists(page, path, option, line):
    command = find_command(path)
    names = {name for param in command.params for name in [*param.opts, *param.secondary_opts]} | {"--help"}
    assert option in names, f"{page} line {line!r}: `ko-sparse {' '.join(path)}` has no {option}"


def code_block_lines(page: Path) -> list[str]:
    """The lines inside the page's fenced code blocks, shell continuations joined and comments cut."""
    lines, inside = [], False
    for line in doc_lines(page):
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.split(" #")[0].strip())
    return lines


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda page: page.name)
def test_every_repository_path_a_docs_command_names_exists(page):
    named = [
        word
        for line in code_block_lines(page)
        for word in shlex.split(line, comments=True, posix=True)
        if REPO_PATH.match(word)
    ]
    missing = [word for word in named if not (ROOT / word).exists()]
    assert not missing, f"{page.name}: commands name {missing}, which are not in the repository"


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda page: page.name)
def test_every_link_between_the_pages_leads_to_a_page_and_heading(page):
    text = page.read_text(encoding="utf-8")
    for target, anchor in re.findall(r"\]\((?!https?:)([^)#\s]*)(?:#([^)\s]+))?\)", text):
        linked = (page.parent / target).resolve() if target else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), flags=re.MULTILINE)
            assert anchor in {heading_anchor(h) for h in headings}, f"{page.name}: no heading #{anchor} in {target}"


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


def doc_command_lines(command: str) -> list[str]:
    """Every ``ko-sparse COMMAND ...`` line of the README and docs/, comments cut."""
    lines = [line.split("#")[0].strip() for page in DOC_PAGES for line in doc_lines(page)]
    return [line for line in lines if line.startswith(f"ko-sparse {command}")]


@pytest.mark.parametrize("line", doc_command_lines("bench"), ids=lambda line: line[16:60])
def test_every_documented_bench_command_passes_the_systems_check(line):
    from ko_sparse.cli.bench import chosen_systems

    words = shlex.split(line)
    systems = next((words[i + 1] for i, word in enumerate(words) if word == "--systems"), "bm25,sparse,hybrid")
    models = tuple(words[i + 1] for i, word in enumerate(words) if word == "--model")
    dense_models = tuple(words[i + 1] for i, word in enumerate(words) if word == "--dense-model")
    if "--list" not in words:
        chosen_systems(systems, models, dense_models)


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
