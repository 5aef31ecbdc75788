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
import numbers
import os
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from ..errors import ConfigError, DomainError, ParameterError
from ..frame import CaptureMetadata, Domain, Frame

__all__ = ["StageSpec", "Stage", "STAGE_ONLY_KEYS", "params_to_plain", "plain_to_params", "param_matches",
           "describe_hint"]

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


def _scalar_matches(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits a scalar type hint; None when ``hint`` is not a scalar type."""
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if hint is str:
        return isinstance(value, (str, os.PathLike))
    return None


def param_matches(value: Any, hint: Any) -> bool:
    """Whether a parameter value fits its field's type hint (unions, tuples, scalars).

    Hints it does not model (``Any``, mappings, arrays …) accept anything and
    leave the check to the stage's own validation.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(param_matches(value, a) for a in args)
    scalar = _scalar_matches(value, hint)
    if scalar is not None:
        return scalar
    if hint is tuple or origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(param_matches(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(param_matches(v, a) for v, a in zip(value, args)))
    return True


def describe_hint(hint: Any) -> str:
    """Plain words for a parameter's type hint, as a config author writes values."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_hint(a) for a in args if a is not type(None)) + \
            (" (or omitted)" if type(None) in args else "")
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "nothing (omit it)"}
    if hint in words:
        return words[hint]
    if hint is tuple or origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({describe_hint(args[0])})"
        plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
        if args and len(set(args)) == 1 and args[0] in plural:
            return f"a list of {len(args)} {plural[args[0]]}"
        return f"a list ({', '.join(describe_hint(a) for a in args)})" if args else "a list"
    return getattr(hint, "__name__", str(hint))


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
    def parameters(cls) -> list[dict[str, Any]]:
        """Each parameter's ``name``, ``type`` (in words), ``default`` and ``allowed`` names (or None).

        ``allowed`` is read from the stage itself: a string parameter whose
        validation rejects an unknown name with the list of valid ones (a
        method table) reports that list.
        """
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not f.init or f.name.startswith("_"):
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            out.append({"name": f.name, "type": describe_hint(hints.get(f.name, Any)),
                        "default": params_to_plain(default), "allowed": cls._allowed_names(f.name, hints.get(f.name))})
        return out

    @classmethod
    def _allowed_names(cls, param: str, hint: Any) -> tuple[str, ...] | None:
        if not param_matches("name", hint) or param_matches(1.0, hint):
            return None
        try:
            cls.from_params({param: "\x00not-a-name"})
        except ConfigError as exc:
            valid = getattr(exc.__cause__, "valid", ())
            return tuple(valid) or None
        except Exception:  # a stage that cannot even be built from defaults lists nothing
            return None
        return None

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
            if k in hints and not param_matches(v, hints[k]):
                raise ConfigError(f"{place}: parameter {k!r} expects {describe_hint(hints[k])}, got {v!r}")
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
