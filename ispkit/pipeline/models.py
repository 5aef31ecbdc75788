"""Model weights by name (``weights="auto"``) and the model records a render carries.

A stage that runs, or could run, a learned model resolves its ``weights``
parameter here and appends one record to ``frame.meta.extra["models"]``:

``{"stage": ..., "model": "fc4.cwp", "weights": path or None,
"sha256": hex or None, "fallback": None or "what ran instead (why)"}``

``weights="auto"`` looks for ``<model>.pth`` then ``<model>.safetensors`` in
the directory named by the environment variable :data:`WEIGHTS_ENV`
(``ISPKIT_WEIGHTS``; ``ispkit render/batch --weights-dir DIR`` sets it).
When nothing is found the stage runs its classical fallback and says so
once per process and stage (:class:`~ispkit.errors.FallbackWarning`) and in
its record. This module is torch-free, so classical stages use it too.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from ..errors import FallbackWarning, WeightsError

__all__ = [
    "WEIGHTS_ENV",
    "AUTO",
    "WEIGHTS_SUFFIXES",
    "find_weights",
    "resolve_weights",
    "weights_sha256",
    "announce_fallback",
    "model_record",
    "add_model_record",
]

#: Environment variable naming the directory ``weights="auto"`` searches.
WEIGHTS_ENV = "ISPKIT_WEIGHTS"
#: The ``weights`` value that asks for a lookup by model name.
AUTO = "auto"
#: File suffixes tried, in order, for ``<model name><suffix>``.
WEIGHTS_SUFFIXES = (".pth", ".safetensors")

_LOCK = threading.Lock()
_HASHES: dict[tuple[str, int, int], str] = {}
_ANNOUNCED: set[tuple[str, str]] = set()


def find_weights(model: str) -> Path | None:
    """Return ``$ISPKIT_WEIGHTS/<model>.pth`` (or ``.safetensors``) when it exists, else None."""
    root = os.environ.get(WEIGHTS_ENV, "").strip()
    if not root:
        return None
    for suffix in WEIGHTS_SUFFIXES:
        p = Path(root).expanduser() / f"{model}{suffix}"
        if p.is_file():
            return p
    return None


def _missing_reason(model: str) -> str:
    root = os.environ.get(WEIGHTS_ENV, "").strip()
    if not root:
        return f"no {model} weights: {WEIGHTS_ENV} is not set"
    return f"no {model} weights in {WEIGHTS_ENV}={root}"


def resolve_weights(model: str, weights: str | os.PathLike | None, where: str) -> tuple[str | None, str | None]:
    """Turn a stage's ``weights`` parameter into a checkpoint path.

    Parameters
    ----------
    model : registered model name, e.g. ``"fc4.cwp"``.
    weights : ``"auto"`` (look up ``<model>.pth``/``.safetensors`` in
        ``$ISPKIT_WEIGHTS``), an explicit path, or None (random weights).
    where : the stage or function, for error messages.

    Returns
    -------
    (path, reason): ``path`` is the file to load (None for random weights
    or when ``"auto"`` found nothing); ``reason`` says why nothing was
    found (``"auto"`` only), else None.

    Raises
    ------
    WeightsError : an explicit path that is not a file.
    """
    if weights is None:
        return None, None
    text = os.fspath(weights)
    if text == AUTO:
        found = find_weights(model)
        return (str(found), None) if found is not None else (None, _missing_reason(model))
    p = Path(text).expanduser()
    if not p.is_file():
        raise WeightsError(
            f"{where}: weights file {text!r} for model {model!r} does not exist; pass an existing "
            f".pth/.safetensors checkpoint, or weights='auto' to look for {model}.pth in ${WEIGHTS_ENV}"
        )
    return str(p), None


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a weights file, computed once per process per (path, mtime, size)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    with _LOCK:
        hit = _HASHES.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _LOCK:
        _HASHES[key] = digest
    return digest


def announce_fallback(stage: str, model: str, fallback: str) -> None:
    """Warn (:class:`FallbackWarning`) that ``stage`` ran ``fallback`` instead of ``model``; once per process."""
    key = (stage, model)
    with _LOCK:
        if key in _ANNOUNCED:
            return
        _ANNOUNCED.add(key)
    warnings.warn(
        f"stage {stage!r}: {fallback} instead of model {model!r}; put {model}.pth in a directory and pass "
        f"--weights-dir DIR (or set {WEIGHTS_ENV}=DIR) to use it",
        FallbackWarning, stacklevel=3,
    )


def model_record(stage: str, model: str, weights: str | None, fallback: str | None = None) -> dict[str, Any]:
    """The ``meta.extra["models"]`` entry of one stage (hashing ``weights`` when given)."""
    return {
        "stage": stage,
        "model": model,
        "weights": None if weights is None else str(weights),
        "sha256": None if weights is None else weights_sha256(weights),
        "fallback": fallback,
    }


def add_model_record(extra: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Return a new ``extra`` mapping with ``record`` appended to its ``"models"`` list (input unchanged)."""
    out = dict(extra or {})
    out["models"] = [*list(out.get("models") or ()), dict(record)]
    return out
