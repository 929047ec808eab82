"""``python -m benchmarks NAME [--quick]``: run one benchmark (``train_step``)."""

from __future__ import annotations

import sys

from benchmarks import train_step

BENCHMARKS = {"train_step": train_step.main}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        sys.exit(f"usage: python -m benchmarks {{{','.join(BENCHMARKS)}}} [--quick] [--repeat N]")
    BENCHMARKS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
