"""Pipelines as TOML data.

Layout::

    name = "default"
    description = "…"

    [[stage]]
    name = "demosaic"         # node name
    type = "demosaic"         # registry name
    version = 1
    [stage.params]
    method = "malvar2004"

Unknown keys raise :class:`~ispkit.errors.ConfigError`. Saving then loading
gives an identical pipeline.

This module is the data layer: it turns TOML into checked stage nodes and
back, and knows nothing of :class:`~ispkit.pipeline.Pipeline` (the graph
builds itself from :func:`parse_pipeline_config` and saves through
:func:`config_from_nodes`).
"""

from __future__ import annotations

import math
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

from ..errors import ConfigError, UnknownNameError
from ..frame import Domain
from .registry import get_stage_class
from .stage import Stage

__all__ = ["PipelineParts", "config_from_nodes", "parse_pipeline_config", "read_config", "write_config",
           "dumps_toml", "loads_config"]

_TOP_KEYS = {"name", "description", "stage", "input_domain", "input_provides"}
_STAGE_KEYS = {"name", "type", "version", "params"}


class PipelineParts(NamedTuple):
    """What a pipeline config describes: named stage nodes and the graph's options."""

    nodes: list[tuple[str, Stage]]
    name: str
    input_domain: Domain | None
    input_provides: tuple[str, ...]


def config_from_nodes(nodes: Sequence[tuple[str, Stage]], *, name: str, input_domain: Domain | None = None,
                      input_provides: Sequence[str] = ()) -> dict[str, Any]:
    """The plain-data (TOML layout) config of named stage nodes."""
    stages = []
    for node_name, stage in nodes:
        cfg = stage.to_config()
        stages.append({"name": node_name, "type": cfg["type"], "version": cfg["version"],
                       "params": cfg["params"]})
    out: dict[str, Any] = {"name": name}
    if input_domain is not None:
        out["input_domain"] = input_domain.value
    if input_provides:
        out["input_provides"] = list(input_provides)
    out["stage"] = stages
    return out


def parse_pipeline_config(config: Mapping[str, Any], *, source: str = "config") -> PipelineParts:
    """Check a config table and build its stages; unknown keys, types or versions raise ConfigError."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: a pipeline config is a table, got {type(config).__name__}")
    unknown = sorted(set(config) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}; valid keys: {sorted(_TOP_KEYS)}")
    stages_cfg = config.get("stage", [])
    if not isinstance(stages_cfg, list) or not stages_cfg:
        raise ConfigError(f"{source}: needs at least one [[stage]] table")
    nodes = []
    for i, st in enumerate(stages_cfg):
        where = f"{source}: [[stage]] #{i + 1}"
        if not isinstance(st, Mapping):
            raise ConfigError(f"{where} must be a table")
        bad = sorted(set(st) - _STAGE_KEYS)
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {bad}; valid keys: {sorted(_STAGE_KEYS)}")
        if "type" not in st:
            raise ConfigError(f"{where}: missing 'type' (one of the names `ispkit stages` lists)")
        try:
            cls = get_stage_class(str(st["type"]))
        except UnknownNameError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        version = st.get("version", cls.version)
        if version != cls.version:
            raise ConfigError(
                f"{where}: stage type {cls.type_name!r} is version {cls.version}, the config says "
                f"version {version}; update the parameters to version {cls.version}"
            )
        name = str(st.get("name", cls.type_name))
        nodes.append((name, cls.from_params(st.get("params", {}), where=f"{where} ({name!r})")))
    domain = config.get("input_domain")
    try:
        input_domain = Domain(domain) if domain is not None else None
    except ValueError:
        raise ConfigError(f"{source}: unknown input_domain {domain!r}; valid: {[d.value for d in Domain]}") from None
    return PipelineParts(nodes, str(config.get("name", "pipeline")), input_domain,
                         tuple(config.get("input_provides", ())))


def loads_config(text: str, *, source: str = "<string>") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a pipeline TOML file as plain data."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such pipeline file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read pipeline file: {exc}") from exc
    return loads_config(text, source=str(p))


def write_config(config: Mapping[str, Any], path: str | Path) -> Path:
    """Write a config as TOML atomically; return the path."""
    p = Path(path)
    text = dumps_toml(config)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


# -- a small TOML writer for the plain data configs hold -------------
def _key(k: str) -> str:
    if k and all(c.isalnum() or c in "_-" for c in k):
        return k
    return _string(k)


def _string(s: str) -> str:
    out = ['"']
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if ("." in r or "e" in r or "n" in r) else r + ".0"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x, where) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(x, where)}" for k, x in v.items()) + "}"
    raise ConfigError(f"{where}: cannot write a {type(v).__name__} value ({v!r}) to TOML")


def dumps_toml(config: Mapping[str, Any]) -> str:
    """Serialise a pipeline config (top-level scalars + ``[[stage]]`` tables)."""
    lines = []
    for k, v in config.items():
        if k != "stage":
            lines.append(f"{_key(k)} = {_value(v, k)}")
    for st in config.get("stage", []):
        lines.append("")
        lines.append("[[stage]]")
        for k in ("name", "type", "version"):
            if k in st:
                lines.append(f"{k} = {_value(st[k], k)}")
        params = st.get("params", {})
        lines.append("[stage.params]")
        for k, v in params.items():
            lines.append(f"{_key(k)} = {_value(v, st.get('name', '?') + '.' + k)}")
    return "\n".join(lines) + "\n"
