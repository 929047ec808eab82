"""``ko-sparse``: Korean neural sparse search on OpenSearch, from data to benchmark."""

from __future__ import annotations

import logging
import os

import click

from ko_sparse import __version__
from ko_sparse.cli.bench import bench_command
from ko_sparse.cli.data import data_group
from ko_sparse.cli.expand import expand_command
from ko_sparse.cli.index import index_command
from ko_sparse.cli.package import package_command
from ko_sparse.cli.register import register_command
from ko_sparse.cli.search import search_command
from ko_sparse.cli.train import train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    quiet_libraries()


def quiet_libraries() -> None:
    """Hide library output a user cannot act on: transformers' warnings and download bars, datasets'
    "Saving the dataset" bars (``HF_DATASETS_DISABLE_PROGRESS_BARS=0`` shows them), and accelerate's
    "Removed shared tensor {'decoder.weight'}" on every save (the MLM decoder is tied to the embeddings
    and re-tied on load). ko-sparse's own progress bars stay."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS") != "0":  # the variable is read at import: too late here
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)


cli.add_command(train_command)
cli.add_command(data_group)
cli.add_command(bench_command)
cli.add_command(expand_command)
cli.add_command(package_command)
cli.add_command(register_command)
cli.add_command(index_command)
cli.add_command(search_command)
