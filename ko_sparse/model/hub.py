"""Where a model name points: a local folder, or a Hugging Face Hub id checked once, quietly.

Loading a missing Hub id through transformers retries the download for ~20 s (a line per retry) before
it fails when the Hub cannot be reached. One ``model_info`` request (huggingface_hub, no retries) tells a
missing model, an unreachable Hub and a cached copy apart first, so the error comes at once and says which.
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
    from huggingface_hub import HfApi, is_offline_mode, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if is_offline_mode():
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
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return  # transformers falls back to the cached copy
        raise ModelLoadError(
            f"{setting}={name!r} could not be loaded: not a local folder, not in the Hugging Face cache, and "
            f"the Hub did not answer ({error.__class__.__name__}: {error}); give a local model folder, or "
            "connect and run again"
        ) from error
