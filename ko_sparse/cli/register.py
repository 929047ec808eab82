"""``ko-sparse register``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ko_sparse.cli.cluster_options import ClusterOptions, cluster_options
from ko_sparse.cli.errors import cluster_errors


@click.command("register")
@cluster_options
@click.option(
    "--model",
    "package_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder written by `ko-sparse package` (has package.json).",
)
@click.option(
    "--model-group",
    default="ko-sparse",
    show_default=True,
    help="ML-Commons model group (created if missing).",
)
@click.option("--deploy/--no-deploy", default=True, show_default=True, help="Deploy and smoke-test after registering.")
@click.option("--force", is_flag=True, help="Upload a new version even if the same model hash is registered.")
@click.option("--pipeline", help="Create/update this sparse_encoding ingest pipeline.")
@click.option(
    "--field-map",
    default="text:embedding",
    show_default=True,
    help="TEXT_FIELD:EMBEDDING_FIELD for the pipeline and index.",
)
@click.option(
    "--prune-type",
    type=click.Choice(["none", "max_ratio", "alpha_mass", "top_k", "abs_value"]),
    default="none",
    show_default=True,
    help="Ingest-time pruning of document weights.",
)
@click.option("--prune-ratio", default=0.1, show_default=True, type=float, help="Parameter of --prune-type.")
@click.option("--index", help="Create this index (rank_features mapping, the pipeline as default) if missing.")
@click.option(
    "--search-pipeline",
    help="Create a two-phase neural_sparse search pipeline and make it the index default.",
)
@click.option("--configure-cluster", is_flag=True, help="Set the ML settings the upload needs (persistent).")
@click.option("--timeout", default=600, show_default=True, type=int, help="Seconds to wait for a deploy.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def register_command(
    cluster: ClusterOptions,
    package_dir,
    model_group,
    deploy,
    force,
    pipeline,
    field_map,
    prune_type,
    prune_ratio,
    index,
    search_pipeline,
    configure_cluster,
    timeout,
    as_json,
) -> None:
    """Upload, deploy and verify a packaged model on a live cluster.

    Registers each zip with _register_meta + upload_chunk (10 MB chunks), deploys it, then compares
    the cluster's _predict token weights on Korean sentences with the same model run in Python.
    Re-running reuses a model with the same sha256 in the group instead of uploading it again.

    \b
    Examples:
      ko-sparse register --host localhost:9200 --model outputs/tiny/package
      ko-sparse register --host localhost:9200 --model pkg --pipeline ko-sparse --index docs
      OPENSEARCH_PASSWORD=... ko-sparse register --host https://search:9200 --user admin --model pkg
    """
    from ko_sparse.opensearch.pipelines import create_pipeline_and_index, neural_sparse_query, parse_field_map
    from ko_sparse.opensearch.register import Registrar, apply_settings, load_package, required_settings

    try:
        fields = parse_field_map(field_map)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    connection = cluster.connection()
    client = connection.client()
    say = (lambda *_: None) if as_json else click.echo
    with cluster_errors(connection.url):
        package_path, manifest = load_package(package_dir)
        registrar = Registrar(client, progress=not as_json, deploy_timeout=timeout)
        registrar.check_plugin()
        problems = required_settings(client)
        if problems and not configure_cluster:
            listing = "; ".join(f"{p.setting} is {p.current}, needs {p.needed} ({p.why})" for p in problems)
            raise click.ClickException(
                f"cluster settings block the upload: {listing}. Re-run with --configure-cluster."
            )
        if problems:
            apply_settings(client, problems)
            say(f"set {', '.join(f'{p.setting}={p.needed}' for p in problems)}")
        group_id = registrar.model_group(model_group)
        results = []
        for artifact in manifest.artifacts:
            registered = registrar.register(package_path, artifact, group_id, force)
            say(f"{artifact.function_name}: {'reused' if registered.reused else 'registered'} {registered.model_id}")
            entry = {
                "function_name": artifact.function_name,
                "model_id": registered.model_id,
                "reused": registered.reused,
            }
            if deploy:
                registrar.deploy(registered.model_id)
                entry["max_relative_difference"] = registrar.smoke_test(package_path, registered)
                say(
                    f"  deployed; _predict matches Python (max relative difference "
                    f"{entry['max_relative_difference']:.1e})"
                )
            results.append(entry)
        ids = {entry["function_name"]: entry["model_id"] for entry in results}
        if pipeline:
            create_pipeline_and_index(
                client,
                ids["SPARSE_ENCODING"],
                fields,
                pipeline,
                index,
                search_pipeline,
                prune_type,
                prune_ratio,
            )
            say(
                f"ingest pipeline {pipeline}"
                + (f", index {index}" if index else "")
                + (f", search pipeline {search_pipeline}" if search_pipeline else "")
            )
    query_model = ids.get("SPARSE_TOKENIZE", ids["SPARSE_ENCODING"])
    query = neural_sparse_query(fields[1], query_model)
    if as_json:
        click.echo(
            json.dumps(
                {"model_group_id": group_id, "models": results, "query": json.loads(query)},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        click.echo(f"query:\n{query}")
