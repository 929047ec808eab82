"""``ko-sparse package``: a trained model -> the files ML-Commons registers.

The output folder holds ``package.json`` (the manifest ``ko-sparse register`` reads) and, per
artifact, a flat zip and its ML-Commons model config: the SPARSE_ENCODING zip (one TorchScript
``.pt`` or ONNX ``.onnx`` model + ``tokenizer.json``) and, in doc-only mode, the SPARSE_TOKENIZE zip
(``tokenizer.json`` + ``idf.json``). A model card ``README.md`` says how it was made and how to use it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch
from sentence_transformers import SparseEncoder

from ko_sparse import __version__
from ko_sparse.data.corpus import read_documents
from ko_sparse.errors import DataError, KoSparseError
from ko_sparse.export.onnx_export import RUNTIME as ONNX_RUNTIME
from ko_sparse.export.onnx_export import OnnxExportError, export_onnx
from ko_sparse.export.sparse_module import ExportedModel, MLCommonsSparseModule, eager_module
from ko_sparse.export.token_strings import check_no_collisions, tokenizer_json
from ko_sparse.export.torchscript import export_torchscript
from ko_sparse.export.verification import Verification, verify
from ko_sparse.model.doc_only import SparseModel, load_model
from ko_sparse.model.hub import model_source
from ko_sparse.model.idf import IDF_FILE, idf_json, idf_vector
from ko_sparse.model.splade import own_loop_fits
from ko_sparse.paths import folder_entries, not_empty

MANIFEST = "package.json"
MODEL_CARD = "README.md"
MODE_DESCRIPTIONS = {
    "bi": "documents and queries encoded by the model",
    "doc-only": "documents encoded by the model, queries tokenized and IDF-weighted",
}
MODES = tuple(MODE_DESCRIPTIONS)
FORMATS = {"torchscript": (export_torchscript, "TorchScript trace"), "onnx": (export_onnx, ONNX_RUNTIME)}


ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
STREAM_CHUNK = 8 << 20  # bytes read at a time when zipping and hashing model files


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (a full-size model is ~600 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(STREAM_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class PackagingError(KoSparseError):
    """The model cannot be packaged as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Artifact:
    """One registrable zip: what ML-Commons needs to know about it."""

    file: str
    config_file: str
    function_name: str
    name: str
    description: str
    size: int
    sha256: str
    model_format: str = "TORCH_SCRIPT"  # ML-Commons' name; packages written before ONNX have no field

    def ml_commons_config(self) -> dict:
        """The model config JSON, in the layout opensearch-py-ml writes."""
        return {
            "name": self.name,
            "version": "1.0.0",
            "description": self.description,
            "model_format": self.model_format,
            "function_name": self.function_name,
            "model_content_size_in_bytes": self.size,
            "model_content_hash_value": self.sha256,
        }


@dataclass
class Manifest:
    """What ``package.json`` records."""

    name: str
    mode: str
    source_model: str
    max_length: int  # the document length: truncation of the SPARSE_ENCODING model (which also encodes bi queries)
    prune_ratio: float
    artifacts: list[Artifact]
    verification: str
    query_length: int | None = None  # truncation of the queries the cluster encodes; None: packages before it
    ko_sparse_version: str = __version__
    torch_version: str = field(default_factory=lambda: torch.__version__)

    def files(self) -> list[str]:
        """Every file ``package`` wrote for this manifest."""
        return [*(name for a in self.artifacts for name in (a.file, a.config_file)), MANIFEST, MODEL_CARD]

    def artifact(self, function_name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.function_name == function_name), None)

    def save(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise PackagingError(
                f"{folder}: no {MANIFEST}; make one with `ko-sparse package MODEL_DIR --output {folder}`"
            )
        try:
            data = _checked(json.loads(path.read_text(encoding="utf-8")), cls, path)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not JSON ({error})") from None
        artifacts = [Artifact(**_checked(artifact, Artifact, path)) for artifact in data["artifacts"]]
        return cls(**{**data, "artifacts": artifacts})


def _checked(data: object, kind: type, path: Path) -> dict:
    """``data`` when it has every field ``kind`` requires and no other; else a :class:`DataError` naming the key."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object for {kind.__name__}, got {type(data).__name__}")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise DataError(f"{path}: unknown key {unknown[0]!r} in {kind.__name__} (known: {', '.join(known)})")
    required = [name for name, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise DataError(f"{path}: missing key {missing[0]!r} in {kind.__name__}")
    return data


def package_model(
    model_dir: str | Path,
    output_dir: str | Path,
    mode: str | None = None,
    max_length: int | None = None,
    prune_ratio: float = 0.0,
    idf_corpus: str | Path | None = None,
    name: str | None = None,
    model_format: str = "torchscript",
    overwrite: bool = False,
    query_length: int | None = None,
) -> tuple[Manifest, Verification]:
    """Export, verify and write the artifacts; raises :class:`PackagingError` when verification fails.

    ``mode`` None follows the model: doc-only models get the query tokenizer model too. ``max_length`` and
    ``query_length`` None: the lengths recorded with the model. A bi-encoder's queries are encoded by the
    document model on the cluster, so they are truncated at the document length.
    ``model_format`` is ``torchscript`` or ``onnx`` (the document/bi-encoder model's format). ``output_dir``
    must be new or empty; with ``overwrite``, a previous package there is replaced (see :func:`replaceable`).
    """
    model = load_model(model_dir, max_length, setting="MODEL_DIR", query_length=query_length)
    if not own_loop_fits(model.encoder):
        raise PackagingError(
            f"MODEL_DIR={str(model_dir)!r}: its document vectors are not max-pooled log(1 + ReLU) SPLADE without "
            "max_active_dims or prompts, which is what the exported SPARSE_ENCODING model computes; bench, "
            "expand and index --encode local serve it as it is, package cannot yet"
        )
    max_length = model.lengths.document
    mode = mode or ("doc-only" if model.doc_only else "bi")
    if mode not in MODES:
        raise PackagingError(f"--mode {mode!r}: expected one of {MODES}")
    if model.doc_only and mode == "bi":
        raise PackagingError(f"{model_dir} is a doc-only model (queries are IDF-weighted tokens): use --mode doc-only")
    if model_format not in FORMATS:
        raise PackagingError(f"--format {model_format!r}: expected one of {tuple(FORMATS)}")
    if not 0.0 <= prune_ratio < 1.0:
        raise PackagingError(f"--prune-ratio {prune_ratio}: expected 0 <= ratio < 1")
    source, output_dir = model_source(model_dir), Path(output_dir)
    name = name or f"ko-sparse-{Path(source).name}"
    stale = replaceable(output_dir, planned_files(name, mode), overwrite)
    idf = _idf(model, idf_corpus) if mode == "doc-only" else None
    encoder = model.encoder
    module = eager_module(encoder, prune_ratio)
    check_no_collisions(encoder.tokenizer)
    tokenizer_file = tokenizer_json(encoder.tokenizer, max_length)
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=output_dir, prefix=".export-") as work:
            exported, verification = _export_and_verify(module, encoder, max_length, model_format, Path(work))
            for file in stale:
                (output_dir / file).unlink()
            artifacts = [
                _write_artifact(
                    output_dir,
                    f"{name}-encoder",
                    "SPARSE_ENCODING",
                    f"Korean SPLADE document/query encoder from {Path(source).name} (max length {max_length})",
                    {f"{name}{exported.suffix}": exported.path, "tokenizer.json": tokenizer_file.encode()},
                    exported.model_format,
                )
            ]
    except PackagingError:
        if created:  # a failed export leaves nothing behind
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    query_length = model.lengths.query if idf is not None else max_length
    if idf is not None:
        artifacts.append(
            _write_artifact(
                output_dir,
                f"{name}-tokenizer",
                "SPARSE_TOKENIZE",
                f"Query tokenizer with IDF weights for {name} (inference-free queries, max length {query_length})",
                {
                    "tokenizer.json": tokenizer_json(encoder.tokenizer, query_length).encode(),
                    IDF_FILE: json.dumps(idf, ensure_ascii=False).encode(),
                },
            )
        )
    manifest = Manifest(name, mode, source, max_length, prune_ratio, artifacts, verification.summary(), query_length)
    manifest.save(output_dir)
    (output_dir / MODEL_CARD).write_text(model_card(manifest), encoding="utf-8")
    return manifest, verification


def _export_and_verify(
    module: MLCommonsSparseModule, encoder: SparseEncoder, max_length: int, model_format: str, work: Path
) -> tuple[ExportedModel, Verification]:
    export, runtime = FORMATS[model_format]
    try:
        exported = export(module, encoder, max_length, work / f"model.{model_format}")
    except OnnxExportError as error:
        raise PackagingError(str(error)) from error
    verification = verify(exported.run, module, encoder, max_length, runtime)
    if not verification.passed:
        raise PackagingError(f"{verification.summary()}; the exported model is not written")
    return exported, verification


def planned_files(name: str, mode: str) -> list[str]:
    """The files a package named ``name`` consists of (as :meth:`Manifest.files` lists them once written)."""
    kinds = ["encoder", "tokenizer"] if mode == "doc-only" else ["encoder"]
    return [*(f"{name}-{kind}{suffix}" for kind in kinds for suffix in (".zip", ".config.json")), MANIFEST, MODEL_CARD]


def replaceable(output_dir: Path, planned: list[str], overwrite: bool) -> list[str]:
    """Check ``output_dir`` before anything is traced; return the previous package's files to remove.

    A folder with anything in it is refused unless ``overwrite``; then only files a previous
    ``ko-sparse package`` wrote there (its ``package.json`` lists them) are replaced or removed, and the
    run is refused when one it would write is someone else's (a hand-written README.md)."""
    if not output_dir.exists():
        return []
    if not output_dir.is_dir():
        raise PackagingError(f"--output {output_dir} is a file, not a folder")
    present = folder_entries(output_dir)
    if not present:
        return []
    if not overwrite:
        choices = "add --overwrite to replace a previous package there (files ko-sparse did not write are left alone)"
        raise PackagingError(not_empty("--output", output_dir, present, choices))
    try:
        ours = set(Manifest.load(output_dir).files())
    except (PackagingError, ValueError, TypeError, KeyError):
        ours = set()
    foreign = [file for file in planned if file in present and file not in ours]
    if foreign:
        raise PackagingError(
            f"--overwrite: {output_dir} holds {', '.join(foreign)}, which ko-sparse did not write and this "
            "package would replace; move it or choose another --output"
        )
    return sorted(file for file in ours - set(planned) if file in present)


def _idf(model: SparseModel, idf_corpus: str | Path | None) -> dict[str, float]:
    if idf_corpus is not None:
        tokenizer = model.encoder.tokenizer
        return idf_json(tokenizer, idf_vector(tokenizer, read_documents(str(idf_corpus), "--idf-corpus")))
    if model.idf is not None:
        return idf_json(model.encoder.tokenizer, model.idf)
    raise PackagingError(
        "--mode doc-only needs query IDF weights: give --idf-corpus FILE (.jsonl with 'text', or one document "
        "per line), or package a doc-only model (ko-sparse train --mode doc-only)"
    )


def _write_artifact(
    folder: Path,
    name: str,
    function_name: str,
    description: str,
    files: dict[str, bytes | Path],
    model_format: str = "TORCH_SCRIPT",
) -> Artifact:
    """The flat zip (ML-Commons reads the top level only), streamed to disk from the files given as
    paths, with a fixed date on every entry: the same model gives the same bytes and sha256, so a
    re-packaged model is recognised by register instead of uploaded again."""
    target = folder / f"{name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zipped:
        for file_name, content in files.items():
            entry = zipfile.ZipInfo(file_name, date_time=ZIP_DATE)
            entry.compress_type, entry.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            with zipped.open(entry, "w") as out:  # < 2 GiB per file: no zip64 records
                if isinstance(content, Path):
                    with content.open("rb") as source:
                        shutil.copyfileobj(source, out, STREAM_CHUNK)
                else:
                    out.write(content)
    artifact = Artifact(
        target.name,
        f"{name}.config.json",
        function_name,
        name,
        description,
        target.stat().st_size,
        file_sha256(target),
        model_format,
    )
    (folder / artifact.config_file).write_text(json.dumps(artifact.ml_commons_config(), indent=2, ensure_ascii=False))
    return artifact


def model_card(manifest: Manifest) -> str:
    rows = "\n".join(
        f"| `{a.file}` | {a.function_name} | {a.model_format} | {a.size:,} | `{a.sha256}` |" for a in manifest.artifacts
    )
    pruning = f"weights below {manifest.prune_ratio} x the largest are dropped" if manifest.prune_ratio else "none"
    query = (
        '{"neural_sparse": {"embedding": {"query_text": "당뇨병 치료", "model_id": "<'
        + ("SPARSE_TOKENIZE" if manifest.mode == "doc-only" else "SPARSE_ENCODING")
        + ' model id>"}}}'
    )
    return f"""# {manifest.name}

Korean SPLADE sparse encoder packaged for OpenSearch ML-Commons by ko-sparse {manifest.ko_sparse_version}
(torch {manifest.torch_version}).

- source model: `{manifest.source_model}`
- mode: **{manifest.mode}** ({MODE_DESCRIPTIONS[manifest.mode]})
- max length: documents {manifest.max_length} tokens, queries {manifest.query_length} tokens (truncation written
  into each zip's `tokenizer.json`)
- model-side pruning: {pruning}
- {manifest.verification}

| file | function | format | bytes | sha256 |
|---|---|---|---|---|
{rows}

Register, deploy and verify on a cluster:

```bash
ko-sparse register --host localhost:9200 --model . --pipeline ko-sparse-ingest --field-map text:embedding --index docs
```

Query (`embedding` is a `rank_features` field filled by the ingest pipeline):

```json
{query}
```
"""
