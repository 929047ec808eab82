"""The package's folders are the pipeline, and every import points down it (lazy imports too).

Bottom to top: text (with the bundled resources and presets, paths, errors and ranking) -> the OpenSearch client
(opensearch) -> data | model/losses -> evaluation -> train -> export -> the cluster workflows that need the
model (workflows) -> bench -> cli. A module may import its own group and the tiers below. Data and
model/losses share a tier and import nothing of each other: data building takes a model's ranking as a
function from its caller, and models read their Korean sentences from resources. The two lowest tiers
import no torch, transformers, sentence-transformers or datasets, so talking to a cluster starts fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ko_sparse

PACKAGE = Path(ko_sparse.__file__).parent
HEAVY = {"torch", "transformers", "sentence_transformers", "datasets"}
TORCH_FREE_TIERS = 2  # the lowest tiers: text and the rest of tier 0, and the OpenSearch client
TIERS = [
    [{"__init__", "errors", "paths", "presets", "ranking", "resources", "text", "usage"}],
    [{"opensearch"}],
    [{"data"}, {"model", "losses"}],
    [{"evaluation"}],
    [{"train"}],
    [{"export"}],
    [{"workflows"}],
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


def imported_names(source: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``source``, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "ko_sparse" else [f"ko_sparse.{a.name}" for a in node.names]
            names = [name if not name.endswith("__version__") else "ko_sparse.__init__" for name in names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.extend((node.lineno, name) for name in names)
    return found


def imported_parts(source: Path) -> list[tuple[int, str]]:
    """(line, top-level ko_sparse part) of every ``ko_sparse.X`` import in ``source``, nested ones included."""
    parts = [(line, name.split(".")) for line, name in imported_names(source)]
    return [(line, part[1]) for line, part in parts if part[0] == "ko_sparse" and len(part) > 1]


def heavy_imports(source: Path) -> list[str]:
    """``line N: module`` for each import of torch, transformers, sentence-transformers or datasets."""
    return [f"line {line}: {name}" for line, name in imported_names(source) if name.split(".")[0] in HEAVY]


MODULES = sorted(PACKAGE.rglob("*.py"))
TORCH_FREE = [source for source in MODULES if place(source.relative_to(PACKAGE).parts[0])[0] < TORCH_FREE_TIERS]


@pytest.mark.parametrize("source", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_pipeline(source):
    own = source.relative_to(PACKAGE).parts[0]
    upward = [f"line {line}: ko_sparse.{part}" for line, part in imported_parts(source) if not allowed(own, part)]
    assert not upward, f"{source.relative_to(PACKAGE)} imports from a higher or sibling layer: {upward}"


@pytest.mark.parametrize("source", TORCH_FREE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_lowest_tiers_import_no_torch(source):
    """Lazy imports count: a torch-free module may be used where torch is not installed or too slow to load."""
    assert not heavy_imports(source), f"{source.relative_to(PACKAGE)} imports {heavy_imports(source)}"


def test_every_folder_and_module_has_a_layer():
    parts = [entry.name.removesuffix(".py") for entry in PACKAGE.iterdir() if entry.is_dir() or entry.suffix == ".py"]
    placed = {name for groups in TIERS for names in groups for name in names}
    unplaced = [part for part in parts if part not in placed and not part.startswith(("_", "."))]
    assert unplaced == [], f"add these to TIERS: {unplaced}"
