"""``python -m benchmarks NAME [--quick] [--repeat N]``.

NAME is one benchmark, ``all`` (every benchmark, then the speed page's table), ``table`` (rewrite docs/speed.md's
table from the latest figure of each ``results/*.jsonl``), ``gpu`` (the GPU check: run it through
``benchmarks/gpu_check.sh`` on a GPU machine) or ``record FILE`` (add the JSON lines a run elsewhere
printed, e.g. the GPU check's, to ``results/`` and the speed page's table). ``--quick`` (``--size quick``)
sizes everything for a 2-core CPU machine with the tiny model; ``--size full`` (the default) runs the
production-size stand-in ``random:ax-encoder-base`` at sizes the machine runs in minutes. ``index_scale``
(100,000 passages through ``ko-sparse index``; with ``--documents N --method exact,seismic`` exact against
SEISMIC on the ml-cluster profile) runs on its own, not in ``all``: it takes the better part of an hour. A
benchmark whose peer is not installed (the ``benchmarks`` extra) is skipped with one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

BENCHMARKS = {  # name -> module with main(argv); ``all`` runs them in this order
    "train_step": "benchmarks.train_step",
    "trainer_speed": "benchmarks.trainer_speed",
    "encoding": "benchmarks.encoding",
    "evaluation": "benchmarks.evaluation",
    "search": "benchmarks.search",
    "opensearch": "benchmarks.cluster",
    "onnx": "benchmarks.onnx_speed",
    "delivery": "benchmarks.delivery",
}
OTHERS = {
    "index_scale": "benchmarks.index_scale",
    "seismic_ids": "benchmarks.seismic_ids",
    "significance": "benchmarks.significance",
    "table": "benchmarks.table",
    "gpu": "benchmarks.gpu",
    "gpu_profile": "benchmarks.gpu_profile",
    "record": "benchmarks.table",
}
# the figures whose cost depends on the model's size; the synonym evaluation and the embedded search are
# measured with the tiny model only (their work does not grow with the encoder)
FULL_SIZE = ("train_step", "encoding", "opensearch", "onnx", "delivery")
PEERS = {
    "search": ("seismic", "pyseismic-lsr"),
    "delivery": ("opensearch_py_ml", "opensearch-py-ml"),
}  # module, package


def missing_peer(name: str) -> str | None:
    """Why benchmark ``name`` cannot run here: the line saying which peer to install (None: it can run)."""
    module, package = PEERS.get(name, (None, None))
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return f"skipped: {name} needs {package} (pip install -e '.[benchmarks]')"


def run(module: str, argv: list[str], function: str = "main") -> None:
    getattr(importlib.import_module(module), function)(argv)


def run_all(argv: list[str]) -> None:
    from benchmarks.common import arguments

    quick = arguments(argv, "", "").quick
    for name, module in BENCHMARKS.items():
        if not quick and name not in FULL_SIZE:
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        skipped = missing_peer(name)
        if skipped:
            print(skipped, file=sys.stderr, flush=True)
            continue
        run(module, argv)
    run("benchmarks.table", [])


def main() -> None:
    names = [*BENCHMARKS, "all", *OTHERS]
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        sys.exit(f"usage: python -m benchmarks {{{','.join(names)}}} [--quick] [--repeat N]\n\n{__doc__}")
    name, argv = sys.argv[1], sys.argv[2:]
    if name == "all":
        run_all(argv)
    elif missing_peer(name):
        sys.exit(missing_peer(name))
    else:
        run({**BENCHMARKS, **OTHERS}[name], argv, "record" if name == "record" else "main")


if __name__ == "__main__":
    main()
