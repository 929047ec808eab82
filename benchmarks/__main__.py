"""``python -m benchmarks NAME [--quick] [--repeat N]``.

NAME is one benchmark, ``all`` (every benchmark but ``index_scale``, then the README table), or ``table``
(rewrite the README table from the latest figure of each ``results/*.jsonl``). ``--quick`` sizes
everything for a 2-core CPU machine; without it the sizes are meant for a GPU box. ``index_scale``
(100,000 passages through ``ko-sparse index``) runs on its own: it takes the better part of an hour.
"""

from __future__ import annotations

import sys

from benchmarks import cluster, encoding, evaluation, index_scale, search, table, train_step

BENCHMARKS = {
    "train_step": train_step.main,
    "encoding": encoding.main,
    "evaluation": evaluation.main,
    "search": search.main,
    "opensearch": cluster.main,
}


def run_all(argv: list[str]) -> None:
    for name, run in BENCHMARKS.items():
        print(f"== {name}", file=sys.stderr, flush=True)
        run(argv)
    table.main([])


def main() -> None:
    commands = {**BENCHMARKS, "index_scale": index_scale.main, "all": run_all, "table": table.main}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m benchmarks {{{','.join(commands)}}} [--quick] [--repeat N]\n\n{__doc__}")
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
