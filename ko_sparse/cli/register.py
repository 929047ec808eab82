"""``ko-sparse register``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ko_sparse.cli.cluster_options import ClusterOptions, cluster_options
from ko_sparse.cli.options import json_option
from ko_sparse.opensearch.pipelines import INGEST_BATCH_SIZE

DEFAULT_MAX_RATIO = 0.1


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
@click.option(
    "--prune-ratio",
    type=float,
    help=f"Parameter of --prune-type: max_ratio {DEFAULT_MAX_RATIO} if not given; top_k (a whole number of tokens), "
    "alpha_mass and abs_value need it.",
)
@click.option(
    "--ingest-batch-size",
    type=click.IntRange(min=1),
    default=INGEST_BATCH_SIZE,
    show_default=True,
    help="Documents of a bulk request the --pipeline's sparse_encoding processor sends per model call "
    "(neural-search's own default is 1).",
)
@click.option(
    "--index",
    help="With --pipeline: create this index for `ko-sparse index --encode pipeline` and `ko-sparse search` "
    "(the pipeline as its default, the model in its _meta) if missing.",
)
@click.option(
    "--search-pipeline",
    help="Create a two-phase neural_sparse search pipeline and make it the index default.",
)
@click.option(
    "--access",
    type=click.Choice(["public", "private", "restricted"]),
    help="Access mode of a new --model-group (clusters with model access control on).",
)
@click.option(
    "--backend-role",
    "backend_roles",
    multiple=True,
    metavar="ROLE",
    help="With --access restricted: a backend role that may use the group's models (repeatable).",
)
@click.option(
    "--configure-cluster",
    is_flag=True,
    help="Turn on local-file registration (persistent setting), which the upload needs; says what it changes.",
)
@click.option(
    "--allow-models-on-data-nodes",
    is_flag=True,
    help="With --configure-cluster, on a cluster without ML nodes: also set only_run_on_ml_node to false.",
)
@click.option("--timeout", default=600, show_default=True, type=int, help="Seconds to wait for a deploy.")
@json_option("Print the result as JSON.")
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
    ingest_batch_size,
    index,
    search_pipeline,
    access,
    backend_roles,
    configure_cluster,
    allow_models_on_data_nodes,
    timeout,
    as_json,
) -> None:
    """Upload, deploy and verify a packaged model on a live cluster.

    Registers each zip with _register_meta + upload_chunk (10 MB chunks), deploys it, then compares
    the cluster's _predict token weights on Korean sentences with the same model run in Python.
    Re-running reuses a model with the same sha256 in the group instead of uploading it again.
    If any step fails (or Ctrl-C), what the run created or changed is undone, newest first, and listed
    on stderr: uploaded models, deployments of reused models, cluster settings, pipelines, the index.

    \b
    Examples:
      ko-sparse register --host localhost:9200 --model outputs/tiny/package
      ko-sparse register --host localhost:9200 --model pkg --pipeline ko-sparse --index docs
      OPENSEARCH_PASSWORD=... ko-sparse register --host https://search:9200 --user admin --ca-certs ca.pem --model pkg
      ko-sparse register --model pkg --model-group team-models --access restricted --backend-role search-team
      eval "$(opensearch/local.sh env --profile secure)"; ko-sparse register --model pkg --configure-cluster
    """
    from ko_sparse.model.pruning import Pruning
    from ko_sparse.opensearch.corpus_index import EMBEDDING, TEXT
    from ko_sparse.opensearch.pipelines import neural_sparse_query, parse_field_map, put_pipelines
    from ko_sparse.opensearch.preflight import ML_PLUGIN, NEURAL_PLUGIN, cluster_facts, require_plugins
    from ko_sparse.opensearch.undo import Undo
    from ko_sparse.workflows.indexing import create_registered_index
    from ko_sparse.workflows.register import Registrar, load_package

    try:
        fields = parse_field_map(field_map)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    prune_ratio = checked_prune_ratio(prune_type, prune_ratio)
    check_access_options(access, backend_roles)
    if index and (not pipeline or not deploy or fields != (TEXT, EMBEDDING)):
        raise click.UsageError(
            f"--index needs --pipeline and --deploy, and the field map {TEXT}:{EMBEDDING} (the index's fields)"
        )
    if allow_models_on_data_nodes and not configure_cluster:
        raise click.UsageError("--allow-models-on-data-nodes changes a cluster setting: give --configure-cluster too")
    connection = cluster.connection()
    client = connection.client()
    say = (lambda *_: None) if as_json else click.echo
    with Undo(lambda line: click.echo(line, err=True)) as undo:
        package_path, manifest = load_package(package_dir)
        facts = cluster_facts(client, connection.url)
        require_plugins(facts, ML_PLUGIN, *([NEURAL_PLUGIN] if pipeline or index or search_pipeline else []))
        registrar = Registrar(client, progress=not as_json, deploy_timeout=timeout, undo=undo)
        group_id = registrar.existing_group(model_group, access, tuple(backend_roles))
        uploads = registrar.to_upload(manifest.artifacts, group_id, force)
        changed = prepare_cluster(
            client, facts, bool(uploads), deploy, access, configure_cluster, allow_models_on_data_nodes, say, undo
        )
        if group_id is None:
            group_id = registrar.model_group(model_group, access, tuple(backend_roles))
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
                entry["deployed_on"] = registrar.deploy(registered, facts)
                entry["max_relative_difference"] = registrar.smoke_test(package_path, registered)
                say(
                    f"  deployed on {', '.join(entry['deployed_on']) or 'the cluster'}; _predict matches Python "
                    f"(max difference {entry['max_relative_difference']:.1e} of the largest weight)"
                )
            results.append(entry)
        ids = {entry["function_name"]: entry["model_id"] for entry in results}
        if pipeline:
            model_id = ids["SPARSE_ENCODING"]
            put_pipelines(
                client, model_id, fields, pipeline, search_pipeline, prune_type, prune_ratio, undo, ingest_batch_size
            )
            pruning = Pruning(prune_type, prune_ratio) if prune_type != "none" else None
            if index and create_registered_index(client, index, model_id, pipeline, pruning, manifest, search_pipeline):
                undo.record(f"created index {index}", lambda: client.indices.delete(index=index))
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
                {
                    "model_group_id": group_id,
                    "cluster_version": facts.version,
                    "changed_settings": changed,
                    "models": results,
                    "query": json.loads(query),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        click.echo(f"query:\n{query}")


def check_access_options(access: str | None, backend_roles: tuple[str, ...]) -> None:
    if backend_roles and access != "restricted":
        raise click.UsageError("--backend-role goes with --access restricted")
    if access == "restricted" and not backend_roles:
        raise click.UsageError("--access restricted needs at least one --backend-role")


def checked_prune_ratio(prune_type: str, prune_ratio: float | None) -> float:
    """The pipeline's prune_ratio, checked as neural-search checks it before anything is sent."""
    from ko_sparse.model.pruning import Pruning

    if prune_type == "none":
        if prune_ratio is not None:
            raise click.UsageError("--prune-ratio goes with a --prune-type other than none")
        return 0.0
    if prune_ratio is None and prune_type != "max_ratio":
        raise click.UsageError(f"--prune-type {prune_type} needs --prune-ratio (e.g. top_k 64, alpha_mass 0.8)")
    ratio = DEFAULT_MAX_RATIO if prune_ratio is None else prune_ratio
    try:
        Pruning(prune_type, ratio)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--prune-ratio") from error
    return ratio


def prepare_cluster(client, facts, upload, deploy, access, configure, allow_data_nodes, say, undo) -> dict[str, str]:
    """Change what the checks found, only with --configure-cluster, saying what; returns the changes made
    (recorded in ``undo``). Local-file registration is needed only when a model is to be uploaded."""
    from ko_sparse.opensearch.preflight import ClusterNotReady, settings_to_change
    from ko_sparse.workflows.register import apply_settings

    changes = settings_to_change(facts, upload, deploy, access, allow_data_nodes)
    if changes and not configure:
        listing = "; ".join(str(change) for change in changes)
        raise ClusterNotReady(
            f"cluster settings block the upload. --configure-cluster would change (persistent): {listing}"
        )
    if changes:
        say("changing cluster settings (persistent): " + "; ".join(str(change) for change in changes))
        apply_settings(client, changes, undo)
    return {change.setting: change.needed for change in changes}
