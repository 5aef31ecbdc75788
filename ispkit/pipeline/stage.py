"""The stage protocol: what every classical and neural stage looks like.

A stage is a pure function plus a thin class. The class is a frozen
dataclass of parameters with a :class:`StageSpec` (domains in and out,
metadata required and provided), ``__call__(frame) -> Frame`` and
``to_config()``. Subclass :class:`Stage`, decorate with
``@dataclass(frozen=True)`` and ``@register_stage``, and implement
:meth:`Stage.process`.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from ..errors import ConfigError, DomainError, ParameterError
from ..frame import CaptureMetadata, Domain, Frame

__all__ = ["StageSpec", "Stage", "STAGE_ONLY_KEYS", "params_to_plain", "plain_to_params"]

#: Metadata that only stages provide (a RAW reader never sets them); a stage
#: requiring one needs an upstream stage that provides it.
STAGE_ONLY_KEYS = frozenset({"illuminant_rgb", "white_point", "color_space"})


@dataclass(frozen=True)
class StageSpec:
    """What a stage consumes and produces.

    Attributes
    ----------
    in_domains : domains the stage accepts.
    out_domain : domain it returns; ``None`` means "the same as its input".
    requires : metadata fields the input frame must carry.
    provides : metadata fields the stage sets on its output.
    pointwise : the stage maps each pixel independently (fusable).
    """

    in_domains: tuple[Domain, ...]
    out_domain: Domain | None = None
    requires: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    pointwise: bool = False

    def output_for(self, domain: Domain) -> Domain:
        return self.out_domain if self.out_domain is not None else domain


def params_to_plain(value: Any) -> Any:
    """Turn a parameter value into TOML-friendly data (tuples → lists, enums → values)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [params_to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return params_to_plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): params_to_plain(v) for k, v in value.items()}
    return value


def plain_to_params(value: Any) -> Any:
    """Inverse of :func:`params_to_plain` for stage fields: lists → tuples."""
    if isinstance(value, list):
        return tuple(plain_to_params(v) for v in value)
    if isinstance(value, dict):
        return {k: plain_to_params(v) for k, v in value.items()}
    return value


class Stage(abc.ABC):
    """Base class of every stage (subclasses are frozen dataclasses).

    Class attributes
    ----------------
    type_name : the registry name, e.g. ``"demosaic"``.
    version : bump when the meaning of the parameters changes.
    """

    type_name: ClassVar[str] = ""
    version: ClassVar[int] = 1

    # -- to implement -------------------------------------------------
    @property
    @abc.abstractmethod
    def spec(self) -> StageSpec:
        """The stage's domains and metadata contract."""

    @abc.abstractmethod
    def process(self, frame: Frame) -> Frame:
        """Compute the output frame (the input is already checked)."""

    # -- provided -----------------------------------------------------
    def __call__(self, frame: Frame) -> Frame:
        """Check ``frame`` against :attr:`spec`, run :meth:`process`, check the result."""
        spec = self.spec
        if not isinstance(frame, Frame):
            raise DomainError(
                f"stage {self.type_name!r} takes an ispkit Frame, got {type(frame).__name__}; "
                "build one with ispkit.read_raw(path) or ispkit.from_array(...)"
            )
        if frame.domain not in spec.in_domains:
            accepted = ", ".join(str(d) for d in spec.in_domains)
            raise DomainError(
                f"stage {self.type_name!r} takes {accepted} frames, got a {frame.domain} frame; "
                "check the order of the pipeline"
            )
        for key in spec.requires:
            frame.meta.require(key, self.type_name)
        out = self.process(frame)
        expected = spec.output_for(frame.domain)
        if out.domain is not expected:
            raise DomainError(
                f"stage {self.type_name!r} returned a {out.domain} frame but declares {expected}"
            )
        return out

    def render_codes(self, frame: Frame, bit_depth: int = 8,
                     out: np.ndarray | None = None) -> tuple[np.ndarray, CaptureMetadata] | None:
        """Integer display codes straight from this stage, or None when it cannot make them.

        A stage that replaces a whole render chain (a fused kernel) overrides
        this to quantise inside its kernel, writing into ``out`` (a
        C-contiguous H×W×3 array of the codes' dtype) when given. Returns the
        codes and the output metadata; the default declines.
        """
        return None

    def to_config(self) -> dict[str, Any]:
        """Return ``{"type", "version", "params"}``; ``from_config`` inverts it exactly."""
        params: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.init or f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if value is None:
                continue  # TOML has no null; absent means the default (which must be None)
            params[f.name] = params_to_plain(value)
        return {"type": self.type_name, "version": self.version, "params": params}

    @classmethod
    def param_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]  # type: ignore[arg-type]

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None, *, where: str = "") -> "Stage":
        """Build the stage from plain parameters; unknown names raise :class:`ConfigError`."""
        params = dict(params or {})
        valid = cls.param_names()
        unknown = sorted(set(params) - set(valid))
        place = where or f"stage {cls.type_name!r}"
        if unknown:
            raise ConfigError(
                f"{place}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"valid parameters are: {', '.join(valid) or '(none)'}"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for k, v in params.items():
            v = plain_to_params(v)
            hint = str(hints.get(k, ""))
            if isinstance(v, int) and not isinstance(v, bool) and "float" in hint and "int" not in hint:
                v = float(v)
            kwargs[k] = v
        try:
            return cls(**kwargs)
        except ParameterError as exc:
            raise ConfigError(f"{place}: {exc}") from exc
        except TypeError as exc:
            raise ConfigError(f"{place}: {exc}") from exc

    def with_params(self, **changes: Any) -> "Stage":
        """Return a copy with some parameters changed (validated like the constructor)."""
        valid = self.param_names()
        unknown = sorted(set(changes) - set(valid))
        if unknown:
            raise ConfigError(
                f"stage {self.type_name!r}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"valid parameters are: {', '.join(valid) or '(none)'}"
            )
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
