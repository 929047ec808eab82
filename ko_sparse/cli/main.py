"""``ko-sparse``: Korean neural sparse search on OpenSearch, from data to benchmark.

Each command's module is imported when that command runs, so ``ko-sparse search`` starts without torch.
Errors are reported here, once: a :class:`~ko_sparse.errors.KoSparseError` as ``Error: <message>`` with
its exit code, and a cluster's connection, auth and transport errors as the diagnosis of what to do.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from ko_sparse import __version__
from ko_sparse.cli.cluster_options import CONNECTION
from ko_sparse.errors import KoSparseError

COMMANDS = {
    "train": "ko_sparse.cli.train:train_command",
    "data": "ko_sparse.cli.data:data_group",
    "bench": "ko_sparse.cli.bench:bench_command",
    "expand": "ko_sparse.cli.expand:expand_command",
    "package": "ko_sparse.cli.package:package_command",
    "register": "ko_sparse.cli.register:register_command",
    "index": "ko_sparse.cli.index:index_command",
    "search": "ko_sparse.cli.search:search_command",
}


class KoSparseGroup(click.Group):
    """Loads a command's module only when it is asked for, and turns errors into one-line messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), name)

    def invoke(self, ctx: click.Context):
        quiet_libraries()
        try:
            return super().invoke(ctx)
        except KoSparseError as error:
            raise one_line(str(error), error.exit_code) from error
        except Exception as error:
            message = cluster_message(ctx, error)
            if message is None:
                raise
            raise one_line(message) from error


def one_line(message: str, exit_code: int = 1) -> click.ClickException:
    """An error as the CLI shows it: ``Error: <message>`` and the exit code."""
    failure = click.ClickException(message)
    failure.exit_code = exit_code
    return failure


def cluster_message(ctx: click.Context, error: Exception) -> str | None:
    """What to do about a cluster's connection, auth or transport error, when a command had connected."""
    connection = ctx.meta.get(CONNECTION)
    if connection is None:
        return None
    from ko_sparse.opensearch.diagnosis import explain

    return explain(connection, error)


@click.group(cls=KoSparseGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ko-sparse")
def cli() -> None:
    """Korean SPLADE sparse encoders for OpenSearch.

    \b
    Pipeline:
      ko-sparse data build  Korean pairs -> filtered, difficulty-balanced triplets
      ko-sparse train     train a SPLADE encoder (bundled offline preset: --preset tiny)
      ko-sparse expand    show the tokens and weights a text expands to
      ko-sparse package   turn a trained model into OpenSearch ML-Commons model files
      ko-sparse register  upload, deploy and verify them on a cluster
      ko-sparse bench     compare BM25, the sparse model and hybrid on Korean retrieval sets
      ko-sparse index     put your corpus into OpenSearch (sparse, BM25 and hybrid in one index)
      ko-sparse search    search it, and see why each document came back
    """


def quiet_libraries() -> None:
    """Hide library output a user cannot act on: transformers' warnings and download bars, datasets'
    "Saving the dataset" bars (``HF_DATASETS_DISABLE_PROGRESS_BARS=0`` shows them), and accelerate's
    "Removed shared tensor {'decoder.weight'}" on every save (the MLM decoder is tied to the embeddings
    and re-tied on load), and huggingface_hub's note that a model given by Hub id comes from its cache.
    ko-sparse's own progress bars stay. The libraries read the variables when imported, which the commands
    do later; one imported already (a test, ``accelerate launch``) is told."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    logging.getLogger("huggingface_hub.hf_api").setLevel(logging.ERROR)  # "Could not reach the Hub ... cached"
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    if "datasets" in sys.modules and os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] != "0":
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
