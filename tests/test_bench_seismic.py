"""bench --method seismic without a node: its refusals and what results.json records."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ko_sparse.bench.opensearch_systems import OpenSearchSparse, SeismicMethod
from ko_sparse.cli.bench import method_settings_of, seismic_method
from ko_sparse.cli.main import cli
from ko_sparse.errors import InputError
from ko_sparse.opensearch.seismic import SeismicParameters


def test_seismic_on_the_embedded_engine_is_one_line():
    result = CliRunner().invoke(cli, ["bench", "--index", "allganize-ko", "--model", "m", "--method", "seismic"])
    assert result.exit_code == 2 and "--method seismic applies to --engine opensearch" in result.output


@pytest.mark.parametrize("option", [["--seismic", "n_postings=5"], ["--method-parameter", "k=5"]])
def test_seismic_parameters_without_the_method_are_one_line(option):
    arguments = ["bench", "--index", "allganize-ko", "--engine", "opensearch", "--model", "m", *option]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2 and "--seismic and --method-parameter apply to --method seismic" in result.output


def test_the_parameters_are_parsed_and_recorded():
    seismic = seismic_method("opensearch", "seismic", ("approximate_threshold=1",), ("k=100", "heap_factor=2"))
    assert seismic == SeismicMethod(SeismicParameters(approximate_threshold=1), {"k": 100, "heap_factor": 2.0})
    assert method_settings_of(seismic) == {
        "method": "seismic",
        "seismic": {"approximate_threshold": 1},
        "method_parameters": {"k": 100, "heap_factor": 2.0},
    }
    assert method_settings_of(None) == {"method": "exact", "seismic": None, "method_parameters": None}
    with pytest.raises(InputError, match="top_n must be positive"):
        seismic_method("opensearch", "seismic", (), ("top_n=0",))


def test_seismic_with_a_cluster_model_is_refused_before_anything_is_created():
    with pytest.raises(InputError, match="--method seismic with --model-id"):
        OpenSearchSparse(None, "x", None, model_id="abc", seismic=SeismicMethod())
