"""The speed page's figures table (docs/speed.md), regenerated from the latest figure in each ``results/*.jsonl``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks import common

SPEED_PAGE = Path(__file__).resolve().parent.parent / "docs" / "speed.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
FULL_SIZE_SUFFIX = " [full size]"


def latest_records() -> list[dict]:
    """The last figure of each ``results/*.jsonl`` at each size (the production-size stand-in's figures
    are rows of their own, named ``NAME [full size]``), by file name."""
    records = []
    for path in sorted(common.RESULTS_DIR.glob("*.jsonl")):
        latest: dict[bool, dict] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                latest[record.get("model") == common.FULL_MODEL] = record
        for full, record in sorted(latest.items()):
            records.append({**record, "name": f"{record['name']}{FULL_SIZE_SUFFIX}"} if full else record)
    return records


def _number(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value:.3g}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _verdict(record: dict) -> str:
    """Met or missed by the median ratio (the range says how sure that is)."""
    target = record.get("target")
    if target is None:
        return ""
    return f"≥ {target:g}x: {'met' if record['ratio'] >= target else 'missed'}"


def _range(record: dict, key: str, number=_number) -> str:
    """`` (low–high)`` of a measured range; records written before ranges existed have none."""
    low_high = record.get(f"{key}_range")
    return f" ({number(low_high[0])}–{number(low_high[1])})" if low_high else ""


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def markdown(records: list[dict]) -> str:
    rows = [
        "| figure | ko-sparse, median (range) | peer (same run) | peer, median (range) | ratio, median (range) "
        "| target (by the median) | repeats | machine | date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        rows.append(
            f"| {r['name']} | {_number(r['value'])}{_range(r, 'value')} {r['unit']} | {r['peer']} | "
            f"{_number(r['peer_value'])}{_range(r, 'peer_value')} | {_ratio(r['ratio'])}{_range(r, 'ratio', _ratio)} | "
            f"{_verdict(r)} | {r.get('repeats', 1)} | {r['machine']} | {r['date'][:10]} |"
        )
    return "\n".join(rows + not_measured_rows(records))


NOT_MEASURED = {  # figures that need a machine this one may not be: shown until a run records them
    name: "a GPU (benchmarks/gpu_check.sh)"
    for name in (
        "gpu_train_realistic",
        "gpu_train_realistic_flops",
        "gpu_train_notebook",
        "gpu_train_notebook_flops",
        "gpu_encode",
        "gpu_encode_compiled",
    )
}


def not_measured_rows(records: list[dict]) -> list[str]:
    seen = {r["name"].removesuffix(FULL_SIZE_SUFFIX) for r in records}
    return [
        f"| {name} | not measured: needs {needs} | | | | | | | |"
        for name, needs in NOT_MEASURED.items()
        if name not in seen
    ]


def record(argv: list[str]) -> None:
    """Append the JSON records in the given files (lines printed by a run elsewhere) to ``results/``."""
    for path in argv:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("{"):
                entry = json.loads(line)
                common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                with (common.RESULTS_DIR / f"{entry['name']}.jsonl").open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    main([])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--page", type=Path, default=SPEED_PAGE)
    args = parser.parse_args(argv)
    text = args.page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{args.page}: no {START} ... {END} block to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    args.page.write_text(f"{head}{START}\n{markdown(latest_records())}\n{END}{tail}", encoding="utf-8")
    print(f"wrote the figures table of {args.page}")


if __name__ == "__main__":
    main()
