"""Presets: pipelines shipped as TOML data, loaded by name or path.

``load_preset("default")`` reads ``ispkit/presets/default.toml``;
``load_preset("my_pipeline.toml")`` reads any pipeline file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ConfigError, unknown_name
from ..pipeline import Pipeline, load_pipeline, loads_config, pipeline_from_config

__all__ = ["load_preset", "list_presets", "preset_description", "preset_text"]


def list_presets() -> list[str]:
    """Names of the presets shipped with ispkit."""
    files = resources.files(__name__)
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def _preset_text(name: str) -> str:
    if name not in list_presets():
        raise unknown_name("preset", name, list_presets(), "load_preset")
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def preset_text(name: str) -> str:
    """The shipped TOML of a preset as written: its description and comments included (an editable copy)."""
    return _preset_text(name)


def preset_description(name: str) -> str:
    """The one-paragraph description stored in a preset."""
    return str(loads_config(_preset_text(name), source=f"preset {name!r}").get("description", ""))


def load_preset(name_or_path: str | Path) -> Pipeline:
    """Return the pipeline of a shipped preset name, or of a TOML file path.

    Raises
    ------
    UnknownNameError : unknown preset name (the message lists the valid ones).
    ConfigError : a malformed TOML file.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.exists():
            raise ConfigError(f"{path}: no such pipeline file (presets: {', '.join(list_presets())})")
        return load_pipeline(path)
    cfg = loads_config(_preset_text(text), source=f"preset {text!r}")
    cfg.pop("description", None)
    return pipeline_from_config(cfg, source=f"preset {text!r}")
