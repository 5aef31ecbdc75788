"""Model weights by name (``weights="auto"``) and the model records a render carries.

A stage that runs, or could run, a learned model resolves its ``weights``
parameter here and appends one record to ``frame.meta.extra["models"]``:

``{"stage": ..., "model": "fc4.cwp", "weights": path or None,
"sha256": hex or None, "fallback": None or "what ran instead (why)",
"random_weights": True only when it ran untrained by the user's opt-in}``

``weights="auto"`` looks for ``<model>.pth`` then ``<model>.safetensors`` in
the directory named by the environment variable :data:`WEIGHTS_ENV`
(``ISPKIT_WEIGHTS``; ``ispkit render/batch --weights-dir DIR`` sets it).
When nothing is found the stage runs its classical fallback and says so
once per process and stage (:class:`~ispkit.errors.FallbackWarning`) and in
its record. This module is torch-free, so classical stages use it too.

No silent random weights: a learned stage checks an explicit weights path
when it is built (:func:`check_weights_param`) and, before it runs, asks
:func:`require_weights`, which raises :class:`~ispkit.errors.MissingWeightsError`
(naming the model, its official source and the options) unless the user
opted in with ``random_weights=True`` (``--allow-random-weights``); the
opt-in is announced once (:class:`~ispkit.errors.RandomWeightsWarning`) and
recorded as ``"random_weights": True`` in the stage's model record.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import (
    FallbackWarning,
    MissingWeightsError,
    ParameterError,
    RandomWeightsWarning,
    WeightsError,
)

__all__ = [
    "WEIGHTS_ENV",
    "AUTO",
    "WEIGHTS_SUFFIXES",
    "find_weights",
    "resolve_weights",
    "check_weights_param",
    "require_weights",
    "missing_weights_message",
    "announce_random_weights",
    "set_model_source_lookup",
    "RANDOM_WEIGHTS_OPTIONS",
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
_ANNOUNCED_RANDOM: set[str] = set()
#: How a user opts in to random initial weights, in Python and on the command line.
RANDOM_WEIGHTS_OPTIONS = ("random_weights=True", "--allow-random-weights")
_SOURCE_LOOKUP: list[Callable[[str], str | None]] = []


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


def check_weights_param(weights: Any, where: str, model: str | None = None) -> str | None:
    """Check a stage's ``weights`` parameter when the stage is built; return it as a string (or None).

    Parameters
    ----------
    weights : None, ``"auto"`` or a checkpoint path (str or ``os.PathLike``).
    where : the stage and parameter, for messages (``"stage 'enhance'"``).
    model : the model the weights are for, named in the message when given.

    Raises
    ------
    ParameterError : ``weights`` is neither None nor a string/path.
    WeightsError : an explicit path that is not an existing file — at build
        time, so ``--set stage.weights=/nope`` fails before any file is read.
    """
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise ParameterError(f"{where} parameter 'weights': expected a checkpoint path, 'auto' or None, "
                             f"got {weights!r}")
    text = os.fspath(weights)
    if text == AUTO:
        return text
    if not Path(text).expanduser().is_file():
        what = f" for model {model!r}" if model else ""
        raise WeightsError(f"{where}: weights file {text!r}{what} does not exist; pass an existing "
                           f".pth/.safetensors checkpoint, or weights='auto' with --weights-dir DIR "
                           f"(or {WEIGHTS_ENV}=DIR)")
    return text


def set_model_source_lookup(fn: Callable[[str], str | None]) -> None:
    """Install ``fn(model) -> "where its official weights come from"`` (``ispkit.neural`` installs the zoo's)."""
    _SOURCE_LOOKUP[:] = [fn]


def _model_source(model: str) -> str | None:
    return _SOURCE_LOOKUP[0](model) if _SOURCE_LOOKUP else None


def missing_weights_message(model: str, where: str, reason: str | None = None) -> str:
    """The message of :class:`~ispkit.errors.MissingWeightsError`: the model, its source, the options."""
    why = f"weights='auto' found none ({reason})" if reason else "no weights were given (weights=None)"
    source = _model_source(model)
    origin = f"official weights: {source}" if source else "see `ispkit models` for where its weights come from"
    return (f"{where}: model {model!r} has no weights to run: {why}, and it will not run on random "
            f"initialisation; {origin}. Pass weights='path/to/{model}.pth', or weights='auto' with "
            f"--weights-dir DIR (or {WEIGHTS_ENV}=DIR) holding {model}.pth or {model}.safetensors, or opt in "
            f"to meaningless random weights with {RANDOM_WEIGHTS_OPTIONS[0]} (CLI: {RANDOM_WEIGHTS_OPTIONS[1]})")


def announce_random_weights(where: str, model: str) -> None:
    """Warn (:class:`~ispkit.errors.RandomWeightsWarning`) that ``where`` runs ``model`` untrained; once per process."""
    with _LOCK:  # once per model: a stage and the method it calls must not both say it
        if model in _ANNOUNCED_RANDOM:
            return
        _ANNOUNCED_RANDOM.add(model)
    warnings.warn(f"{where}: model {model!r} runs on random initial weights ({RANDOM_WEIGHTS_OPTIONS[0]}); "
                  "its output is meaningless", RandomWeightsWarning, stacklevel=3)


def require_weights(model: str, path: str | None, *, random_weights: bool, where: str,
                    reason: str | None = None) -> bool:
    """Decide whether a learned stage may run; return True when it runs on random weights.

    Parameters
    ----------
    model : the registered model name.
    path : the resolved checkpoint (:func:`resolve_weights`), None when there is none.
    random_weights : the user's explicit opt-in to random initial weights.
    where : the stage or function (``"stage 'enhance'"``), for the messages.
    reason : why ``weights="auto"`` found nothing, if it was asked.

    Raises
    ------
    MissingWeightsError : ``path`` is None and ``random_weights`` is False.
    """
    if path is not None:
        return False
    if not isinstance(random_weights, bool):
        raise ParameterError(f"{where} parameter 'random_weights': expected True or False, got {random_weights!r}")
    if not random_weights:
        raise MissingWeightsError(missing_weights_message(model, where, reason))
    announce_random_weights(where, model)
    return True


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


def model_record(stage: str, model: str, weights: str | None, fallback: str | None = None,
                 random_weights: bool = False) -> dict[str, Any]:
    """The ``meta.extra["models"]`` entry of one stage (hashing ``weights`` when given).

    ``random_weights`` is True only when the model ran untrained by the user's opt-in.
    """
    return {
        "stage": stage,
        "model": model,
        "weights": None if weights is None else str(weights),
        "sha256": None if weights is None else weights_sha256(weights),
        "fallback": fallback,
        "random_weights": bool(random_weights),
    }


def add_model_record(extra: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Return a new ``extra`` mapping with ``record`` appended to its ``"models"`` list (input unchanged)."""
    out = dict(extra or {})
    out["models"] = [*list(out.get("models") or ()), dict(record)]
    return out
