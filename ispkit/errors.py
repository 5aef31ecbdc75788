"""The one exception hierarchy of ispkit.

Every error a user can provoke derives from :class:`ISPError`. Messages say
what was expected, what arrived, and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ISPError",
    "RawReadError",
    "UnsupportedRawError",
    "DomainError",
    "MissingMetadataError",
    "ConfigError",
    "WeightsError",
    "MissingWeightsError",
    "UnknownNameError",
    "ParameterError",
    "InputError",
    "BatchError",
    "NotInvertibleError",
    "FallbackWarning",
    "RandomWeightsWarning",
]


class ISPError(Exception):
    """Base class of every ispkit error."""


class RawReadError(ISPError):
    """A file could not be read as a RAW image (missing, empty, truncated, not a RAW)."""


class UnsupportedRawError(ISPError):
    """A RAW file was read but its sensor layout is not supported (X-Trans, Foveon, linear DNG…)."""


class DomainError(ISPError):
    """A stage received pixels of the wrong domain, or a pipeline chains domains wrongly."""


class MissingMetadataError(ISPError):
    """A stage needs a metadata field that the frame does not carry."""


class ConfigError(ISPError):
    """A TOML or dict configuration is malformed (unknown keys, wrong types, bad version)."""


class WeightsError(ISPError):
    """A weights file does not fit the model (missing, unexpected or mis-shaped keys)."""


class MissingWeightsError(WeightsError):
    """A learned stage has no weights to run (none given, or ``weights="auto"`` found none) and no opt-in.

    The message names the model, where its official weights come from, and
    the options: ``weights=PATH``, ``weights="auto"`` with a weights
    directory, or ``random_weights=True`` (``--allow-random-weights``).
    """


class BatchError(ISPError):
    """A batch cannot run at all: unusable IN_DIR / OUT_DIR, unwritable output, missing executor."""


class NotInvertibleError(ISPError):
    """A stage or pipeline has no exact inverse (it merges or discards information, or its matrix is singular)."""


class FallbackWarning(UserWarning):
    """A stage ran its classical fallback because a model's weights were not found (said once per process)."""


class RandomWeightsWarning(UserWarning):
    """A learned stage runs on random initial weights because the user opted in (said once per process)."""


class ParameterError(ISPError, ValueError):
    """A stage or function parameter is out of range or of the wrong kind."""


class UnknownNameError(ParameterError, KeyError):
    """A name (method, stage, preset, model) is not in its table; the message lists valid ones.

    ``valid`` holds those names (empty when raised without :func:`unknown_name`).
    """

    valid: tuple = ()

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputError(ISPError, ValueError):
    """Input pixels are unusable (non-finite values, empty, odd size for a Bayer stage…)."""


def unknown_name(kind: str, name: object, valid: object, where: str = "") -> UnknownNameError:
    """Build an :class:`UnknownNameError` that lists the valid names."""
    ordered = sorted(valid)  # type: ignore[call-overload]
    names = ", ".join(repr(v) for v in ordered)
    place = f"{where}: " if where else ""
    err = UnknownNameError(f"{place}unknown {kind} {name!r}; valid {kind}s are: {names}")
    err.valid = tuple(ordered)
    return err
