"""One document length and one query length, recorded with the model: package and bench use them unless told."""

from __future__ import annotations

import json
import zipfile

from click.testing import CliRunner

from ko_sparse.cli.main import cli

RECORD = {"document": 40, "query": 12}  # what `ko-sparse train` writes next to the model


def recorded_model(encoder, folder):
    encoder.save(str(folder))
    (folder / "ko_sparse_lengths.json").write_text(json.dumps(RECORD))
    return folder


def test_package_ships_and_records_the_models_document_length(tiny_encoder, tmp_path):
    model = recorded_model(tiny_encoder, tmp_path / "model")
    result = CliRunner().invoke(cli, ["package", str(model), "--output", str(tmp_path / "package")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "package" / "package.json").read_text())
    assert manifest["max_length"] == 40
    assert manifest["query_length"] == 40  # the cluster encodes a bi-encoder's queries with the same zip
    with zipfile.ZipFile(tmp_path / "package" / manifest["artifacts"][0]["file"]) as archive:
        assert json.loads(archive.read("tokenizer.json"))["truncation"]["max_length"] == 40


def beir_folder(folder):
    """Three documents, two queries: the smallest set bench takes."""
    (folder / "qrels").mkdir(parents=True)
    texts = {"d1": "당뇨병 치료 방법", "d2": "고혈압 약 복용 시간", "d3": "감기 예방 수칙"}
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in texts.items()))
    queries = {"q1": "당뇨병 치료", "q2": "고혈압 약"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return folder


def test_bench_defaults_to_the_models_lengths_and_records_an_override(tiny_encoder, tmp_path):
    model = recorded_model(tiny_encoder, tmp_path / "model")
    beir = beir_folder(tmp_path / "beir")
    arguments = ["bench", "--index", str(beir), "--systems", "sparse", "--model", str(model)]

    def sparse_details(*extra: str) -> tuple[dict, dict]:
        output = tmp_path / f"report{len(extra)}"
        result = CliRunner().invoke(cli, [*arguments, "--output", str(output), *extra])
        assert result.exit_code == 0, result.output
        payload = json.loads((output / "results.json").read_text())
        return payload["settings"], payload["systems"][0]["index"]["details"]

    settings, details = sparse_details()
    assert (settings["max_length"], details["max_length"], details["query_length"]) == (None, 40, 12)
    settings, details = sparse_details("--max-length", "24", "--query-length", "16")
    assert (settings["max_length"], settings["query_length"]) == (24, 16)
    assert (details["max_length"], details["query_length"]) == (24, 16)
