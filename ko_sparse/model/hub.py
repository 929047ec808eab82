"""Where a model name points: a local folder, or a Hugging Face Hub id checked once, quietly.

Loading a missing Hub id through transformers retries the download for ~20 s (a line per retry) before
it fails when the Hub cannot be reached. One ``model_info`` request (huggingface_hub, no retries) tells a
missing model, an unreachable Hub and a cached copy apart first, so the error comes at once and says which.
Offline (``HF_HUB_OFFLINE=1``) an id must be in the Hugging Face cache. What a model *is* (a saved
sentence-transformers model, a Router) is read from its files as sentence-transformers resolves them
(:func:`model_file`), so a Hub id and a local folder are told apart by the same rule.
"""

from __future__ import annotations

from pathlib import Path

from ko_sparse.errors import ModelLoadError

HUB_TIMEOUT_S = 10.0


def looks_like_path(name: str) -> bool:
    """True for names that can only be folders (``./x``, ``/x``, ``~/x``, ``a/b/c``), never Hub ids (``org/name``)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def check_model_source(name: str, setting: str) -> None:
    """Raise :class:`ModelLoadError` unless ``name`` is a folder with a model, a model on the Hub, or one in
    the local Hugging Face cache. Offline (``HF_HUB_OFFLINE=1``) the Hub is not asked: loading reads the cache."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
            raise ModelLoadError(
                f"{setting}={name!r} could not be loaded: the folder holds no model (no config.json or "
                "modules.json); give a folder written by `ko-sparse train` (e.g. outputs/tiny/best) or a "
                "Hugging Face masked-LM id"
            )
        return
    if looks_like_path(name) or folder.exists():
        raise ModelLoadError(f"{setting}={name!r} could not be loaded: no such model folder")
    from huggingface_hub import HfApi, is_offline_mode
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if is_offline_mode():
        if not in_cache(name):
            raise ModelLoadError(
                f"{setting}={name!r} could not be loaded: not a local folder and not in the Hugging Face cache, "
                "and HF_HUB_OFFLINE=1 forbids the download; download it once online (`hf download "
                f"{name}`), or give a local model folder"
            )
        return
    try:
        HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        return  # it exists; loading says which access it needs
    except RepositoryNotFoundError as error:
        raise ModelLoadError(
            f"{setting}={name!r} could not be loaded: not a local folder, and the Hugging Face Hub has no "
            "model with that id (a private one needs `hf auth login`)"
        ) from error
    except Exception as error:  # no answer: the HTTP client's errors differ between huggingface_hub versions
        if in_cache(name):
            return  # transformers falls back to the cached copy
        raise ModelLoadError(
            f"{setting}={name!r} could not be loaded: not a local folder, not in the Hugging Face cache, and "
            f"the Hub did not answer ({error.__class__.__name__}: {error}); give a local model folder, or "
            "connect and run again"
        ) from error


def in_cache(name: str) -> bool:
    """True when the Hugging Face cache holds model ``name`` (its ``modules.json`` or ``config.json``)."""
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(name, file), str) for file in ("modules.json", "config.json"))


def model_file(name: str, filename: str) -> str | None:
    """The local path of ``filename`` of model ``name`` (a folder, or a Hub id: cached or downloaded),
    resolved as sentence-transformers resolves it; None when the model has no such file."""
    from sentence_transformers.util import load_file_path

    try:
        return load_file_path(str(name), filename)
    except Exception:  # the Hub did not answer about this file: loading the model reports it, once
        return None


def model_source(name: str | Path) -> str:
    """How a model is recorded (package.json, an index's meta): a folder's absolute path, or the Hub id as given."""
    folder = Path(name).expanduser()
    return str(folder.resolve()) if folder.is_dir() else str(name)


def model_folder(name: str | Path) -> Path:
    """The local folder with model ``name``'s files: the folder itself, or a Hub id's snapshot in the cache."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    found = model_file(str(name), "modules.json") or model_file(str(name), "config.json")
    if found is None:
        raise ModelLoadError(f"{name!r}: neither a model folder nor a model in the Hugging Face cache")
    return Path(found).parent
