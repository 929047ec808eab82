"""The package's folders are the pipeline, and every import points down it (lazy imports too).

Bottom to top: text (with the bundled resources and presets, paths, errors and ranking) -> data | model/losses ->
evaluation -> train -> export -> opensearch -> bench -> cli. A module may import its own group and the
tiers below. Data and model/losses share a tier and import nothing of each other: data building takes
a model's ranking as a function from its caller, and models read their Korean sentences from resources.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ko_sparse

PACKAGE = Path(ko_sparse.__file__).parent
TIERS = [
    [{"__init__", "errors", "paths", "presets", "ranking", "resources", "text", "usage"}],
    [{"data"}, {"model", "losses"}],
    [{"evaluation"}],
    [{"train"}],
    [{"export"}],
    [{"opensearch"}],
    [{"bench"}],
    [{"cli", "__main__"}],
]


def place(part: str) -> tuple[int, int]:
    """(tier, group within the tier) of a top-level folder or module of the package."""
    part = part.removesuffix(".py")
    return next(
        (tier, group) for tier, groups in enumerate(TIERS) for group, names in enumerate(groups) if part in names
    )


def allowed(importer: str, imported: str) -> bool:
    (tier, group), (other_tier, other_group) = place(importer), place(imported)
    return other_tier < tier or (other_tier, other_group) == (tier, group)


def imported_parts(source: Path) -> list[tuple[int, str]]:
    """(line, top-level ko_sparse part) of every ``ko_sparse.X`` import in ``source``, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "ko_sparse" else [f"ko_sparse.{a.name}" for a in node.names]
            names = [name if not name.endswith("__version__") else "ko_sparse.__init__" for name in names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "ko_sparse" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("source", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_pipeline(source):
    own = source.relative_to(PACKAGE).parts[0]
    upward = [f"line {line}: ko_sparse.{part}" for line, part in imported_parts(source) if not allowed(own, part)]
    assert not upward, f"{source.relative_to(PACKAGE)} imports from a higher or sibling layer: {upward}"


def test_every_folder_has_a_layer():
    for entry in PACKAGE.iterdir():
        if entry.name.startswith(("_", ".")) and entry.name not in ("__init__.py", "__main__.py"):
            continue
        if entry.is_dir() or entry.suffix == ".py":
            place(entry.name)  # raises StopIteration for a folder nobody placed
