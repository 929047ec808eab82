"""The make targets a newcomer runs: what each installs and which tests each runs (read from ``make -n``)."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from pathlib import Path

from _pytest.mark.expression import Expression

ROOT = Path(__file__).resolve().parents[1]
MARKS = ("integration", "slow", "secure", "ml_cluster")


def make_plan(*arguments: str) -> list[str]:
    """The commands ``make ARGUMENTS`` would run, every target rebuilt (nothing is run)."""
    result = subprocess.run(["make", "-n", "-B", *arguments], cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def pytest_selections(plan: list[str]) -> list[str]:
    """The ``-m`` expression of each pytest run in the plan, in order ("" when a run selects everything)."""
    selections = []
    for line in plan:
        words = shlex.split(line)
        if words and words[0].endswith("/pytest"):
            selections.append(next((words[i + 1] for i, word in enumerate(words) if word == "-m"), ""))
    return selections


def selects(selection: str, marks: set[str]) -> bool:
    return not selection or Expression.compile(selection).evaluate(lambda name: name in marks)


def every_combination_of_marks() -> list[set[str]]:
    """The marks a test can carry together: a profile's tests live in tests/integration, so are integration."""
    combinations = [set(marks) for size in range(len(MARKS) + 1) for marks in itertools.combinations(MARKS, size)]
    return [marks for marks in combinations if "integration" in marks or not marks & {"secure", "ml_cluster"}]


def test_make_test_lints_then_runs_only_the_tests_that_need_no_node_and_no_long_training():
    plan = make_plan("test")
    [selection] = pytest_selections(plan)
    lint = next(i for i, line in enumerate(plan) if "/ruff check " in line)
    assert lint < next(i for i, line in enumerate(plan) if "/pytest" in line)
    assert selects(selection, set())
    assert not any(selects(selection, marks) for marks in every_combination_of_marks() if marks)


def test_make_test_all_runs_make_test_then_every_other_test_exactly_once():
    selections = pytest_selections(make_plan("test-all"))
    assert selections[0] == pytest_selections(make_plan("test"))[0]
    for marks in every_combination_of_marks():
        assert sum(selects(selection, marks) for selection in selections) == 1, marks


def test_ci_runs_the_lowest_versions_first_then_make_test_all():
    lines = [line.split("#")[0] for line in (ROOT / ".ci/run").read_text().splitlines()]
    commands = [match.group(1) for line in lines if (match := re.search(r"\bmake ([\w-]+)", line))]
    assert commands == ["test-lowest", "test-all"]


def test_make_installs_ko_sparse_into_the_venv_the_readme_runs_it_from():
    plan = make_plan("demo")
    install = plan.index('.venv/bin/pip install -e ".[dev]"')
    assert all(index > install for index, line in enumerate(plan) if line.startswith(".venv/bin/ko-sparse "))
    assert any(line.startswith(".venv/bin/ko-sparse train ") for line in plan)


def test_make_installs_the_cpu_build_of_torch_only_when_asked(tmp_path):
    url = "https://download.pytorch.org/whl/cpu"
    plan = make_plan("install", f"VENV={tmp_path}/venv", f"TORCH_INDEX_URL={url}")
    torch_line = plan.index(f"{tmp_path}/venv/bin/pip install torch --index-url {url}")
    assert torch_line < next(i for i, line in enumerate(plan) if 'pip install -e ".[dev]"' in line)
    assert not any("--index-url" in line for line in make_plan("install", f"VENV={tmp_path}/venv"))
