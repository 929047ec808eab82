"""``python -m ko_sparse``: the CLI, for launchers (``accelerate launch -m ko_sparse train ...``)."""

from ko_sparse.cli.main import cli

if __name__ == "__main__":
    cli()
