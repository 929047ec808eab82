"""``ko-sparse bench --suite``: every set of a suite through the same systems and runner as ``bench --index``."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import click

from ko_sparse.cli.bench import build_systems, fusions, method_settings_of, missing_documents_note, versions
from ko_sparse.errors import DataError


def run_suite_command(spec: str, options: dict, output_dir: Path | None) -> None:
    """Run the suite ``spec`` with ``bench``'s options (``engine``, ``connection``, ``models``, ``model_id``,
    ``chosen``, ``prunings``, ``lengths``, ``batch_size``, ``runtime``, ``dense``, ``keep``, ``strict``, ``seismic``)
    and write suite.json/md/html, plus each set's own bench report in a folder of its own."""
    from ko_sparse.bench.report import write_report
    from ko_sparse.bench.runner import run_benchmark
    from ko_sparse.bench.suite import run_suite
    from ko_sparse.bench.suite_report import markdown_table, summary_table, write_suite_report
    from ko_sparse.data.suite import suite_sets

    sets = suite_sets(spec)
    name = spec.partition(":")[0]
    output_dir = output_dir or Path("outputs") / "bench" / f"suite-{name}"
    settings = suite_settings(spec, options)

    def run_set(dataset):
        click.echo(f"{dataset.name}: {dataset.summary()}")
        try:
            missing = missing_documents_note(dataset, options["strict"])
        except click.UsageError as error:
            raise DataError(error.message) from error
        o = options
        built, notes, cleanup = build_systems(
            o["engine"], o["connection"], o["models"], o["model_id"], o["chosen"], o["prunings"],
            o["lengths"], o["batch_size"], o["runtime"], dataset.name, o["dense"], o.get("seismic"),
        )  # fmt: skip
        try:
            results = run_benchmark(dataset, built, fusions=fusions(o["chosen"]))
        finally:
            if not o["keep"]:
                for action in cleanup:
                    action()
        notes = [*missing, *notes, *(note for system in built for note in getattr(system, "notes", list)())]
        write_report(output_dir / safe_name(dataset.name), dataset, results, {**settings, "notes": notes})
        return results, notes

    suite = run_suite(name, sets, run_set)
    write_suite_report(output_dir, suite, settings)
    click.echo(markdown_table(summary_table(suite)))
    for outcome in suite.failed:
        click.echo(f"failed: {outcome.error}", err=True)
    click.echo(f"report: {output_dir / 'suite.md'} and {output_dir / 'suite.html'}")
    if not suite.completed:
        raise DataError(f"--suite {spec}: none of its {len(sets)} sets ran (errors above and in suite.md)")


def safe_name(name: str) -> str:
    return name.replace(":", "-").replace("/", "-")


def suite_settings(spec: str, options: dict) -> dict:
    connection = options["connection"]
    return {
        "suite": spec,
        "engine": options["engine"],
        "host": connection.url if connection else None,
        "models": [str(path) for path in options["models"]],
        "model_id": options["model_id"],
        "systems": options["chosen"],
        "max_length": options["lengths"][0],
        "query_length": options["lengths"][1],
        "batch_size": options["batch_size"],
        "runtime": options["runtime"],
        "prune": list(options["prunings"]),
        **method_settings_of(options.get("seismic")),
        "machine": f"{platform.processor() or platform.machine()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **versions(),
    }
