"""MkDocs hook: the parts of the docs generated from the package at build time.

- ``<!-- ispkit-cli-reference -->``: the command-line reference, read from
  ``ispkit.cli.build_parser()``;
- ``<!-- ispkit-presets -->``: the shipped presets with their stages and
  stored descriptions, from ``ispkit.presets``;
- ``<!-- ispkit-shadowed: MODULE -->``: the exported functions of MODULE
  that share their name with a submodule (``ispkit.render``), which the
  static API reader would otherwise miss;
- ``<!-- ispkit-default-compiled -->``: the default preset's nodes and the
  nodes fusion compiles them to;
- ``<!-- ispkit-method-tables -->``: the valid names of every method table in
  ``ispkit.stages`` (``DEMOSAIC_METHODS`` …), read after the neural plug-ins
  registered theirs. Each gets the anchor of its full path, so docstring
  roles such as ``:data:`DEMOSAIC_METHODS``` link to it.

The page ``reference/cli.md`` holds the marker ``<!-- ispkit-cli-reference -->``;
at build time it is replaced by one section per subcommand (its help, usage
line and a table of its arguments), read from the argparse parser itself, so
the reference cannot drift from the command line. ``tests/test_docs.py``
checks that every subcommand gets a section.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from typing import Any

MARKER = "<!-- ispkit-cli-reference -->"
PRESETS_MARKER = "<!-- ispkit-presets -->"
METHODS_MARKER = "<!-- ispkit-method-tables -->"
FUSION_MARKER = "<!-- ispkit-default-compiled -->"
SHADOWED_RE = re.compile(r"<!-- ispkit-shadowed: *(?P<module>[\w.]+) *-->")
#: Module-level name tables documented with their own docstring (rendered by mkdocstrings instead).
_DOCUMENTED_TABLES = {"COLOR_SPACES"}

_log = logging.getLogger("mkdocs.plugins.ispkit_cli_reference")


def _subparsers(parser: argparse.ArgumentParser) -> tuple[argparse._SubParsersAction | None, dict[str, str]]:
    """The subcommand action of ``parser`` and each subcommand's one-line help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return action, helps
    return None, {}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    if action.nargs == 0:
        return ", ".join(f"`{opt}`" for opt in action.option_strings)
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper())
    return ", ".join(f"`{opt} {metavar}`" for opt in action.option_strings)


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _help(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    if "%(" in text:
        text = parser._get_formatter()._expand_help(action)
    extras = []
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        extras.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if action.nargs == "?" and not action.option_strings:
        extras.append("optional")
    if action.required and action.option_strings:
        extras.append("required")
    if isinstance(action, argparse._AppendAction) and "repeatable" not in text:
        extras.append("repeatable")
    if extras:
        text = f"{text} ({'; '.join(extras)})" if text else "; ".join(extras).capitalize()
    return _cell(text)


def _arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
            and a.help != argparse.SUPPRESS]
    if not rows:
        return ["No arguments besides `-h` / `--help`.", ""]
    lines = ["| argument | default | meaning |", "|---|---|---|"]
    for action in rows:
        lines.append(f"| {_invocation(action)} | {_default(action)} | {_help(action, parser)} |")
    return [*lines, ""]


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line as argparse prints it, wrapped at 88 columns."""
    formatter = parser.formatter_class(prog=parser.prog, width=88)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip("\n")


def _command_sections(parser: argparse.ArgumentParser, level: int) -> list[str]:
    """One heading per subcommand of ``parser`` (and, below it, of its own subcommands)."""
    action, helps = _subparsers(parser)
    if action is None:
        return []
    lines: list[str] = []
    for name, sub in action.choices.items():
        lines += [f"{'#' * level} `{sub.prog}`", ""]
        summary = helps.get(name) or sub.description or ""
        if summary:
            lines += [_cell(summary[:1].upper() + summary[1:]).rstrip(".") + ".", ""]
        if sub.description and sub.description != summary:
            lines += [sub.description, ""]
        lines += [f"```text\n{_usage(sub)}\n```", "", *_arguments_table(sub)]
        lines += _command_sections(sub, level + 1)
    return lines


def render_cli_reference(parser: argparse.ArgumentParser) -> str:
    """Markdown reference of ``parser``: global options, then one ``## `ispkit NAME` `` section per subcommand."""
    lines = [f"```text\n{_usage(parser)}\n```", ""]
    if parser.description:
        lines += [parser.description, ""]
    lines += ["## Global options", "", *_arguments_table(parser)]
    lines += _command_sections(parser, 2)
    if parser.epilog:
        lines += [parser.epilog, ""]
    return "\n".join(lines)


def render_presets_table() -> str:
    """Markdown table of the shipped presets and their stored descriptions."""
    from ispkit.presets import list_presets, load_preset, preset_description

    lines = ["| preset | stages | description |", "|---|---|---|"]
    for name in list_presets():
        stages = " → ".join(load_preset(name).names)
        lines.append(f"| `{name}` | {_cell(stages)} | {_cell(preset_description(name))} |")
    return "\n".join(lines) + "\n"


def method_tables() -> list[tuple[str, list[str], list[str]]]:
    """``(canonical path, exported paths, sorted names)`` of each method table in ``ispkit.stages``."""
    import importlib
    import pkgutil

    import ispkit.stages as stages

    try:  # the neural plug-ins (fc4, unet …) join the tables when ispkit.neural is imported
        importlib.import_module("ispkit.neural")
    except ImportError:
        pass
    tables = []
    for info in sorted(pkgutil.iter_modules(stages.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{stages.__name__}.{info.name}")
        for name, value in vars(module).items():
            if (not name.isupper() or not name.endswith(("_METHODS", "_CURVES")) or name in _DOCUMENTED_TABLES
                    or not hasattr(value, "__iter__") or isinstance(value, str)):
                continue
            if getattr(module, "__all__", None) is not None and name not in module.__all__ \
                    and name not in stages.__all__:
                continue
            exported = [f"{stages.__name__}.{name}"] if name in stages.__all__ else []
            tables.append((f"{module.__name__}.{name}", exported, sorted(str(k) for k in value)))
    return tables


def render_method_tables() -> str:
    """One heading per method table (anchored at its full path) with its valid names."""
    lines = []
    for path, exported, names in method_tables():
        anchors = "".join(f"[](){{#{alias}}}" for alias in exported)  # autorefs anchor aliases
        short = path.rsplit(".", 1)[-1]
        lines += [*([anchors, ""] if anchors else []), f"### `{short}` {{#{path}}}", "",
                  f"`{path}`: " + ", ".join(f"`{n}`" for n in names), ""]
    return "\n".join(lines)


def render_default_compiled() -> str:
    """A code block: the default preset's nodes and what they compile to, as this version does it."""
    from ispkit.presets import load_preset

    pipe = load_preset("default")
    compiled = [name for name, _ in pipe.compiled_nodes()]
    return ("```python\n"
            'pipe = ispkit.load_preset("default")\n'
            "pipe.names\n"
            f"# {pipe.names}\n"
            "[name for name, _ in pipe.compiled_nodes()]\n"
            f"# {compiled}\n"
            "```\n")


def shadowed_functions(module_name: str) -> list[str]:
    """Full paths of the exported functions of ``module_name`` that share their name with a submodule.

    ``ispkit.render`` is a module and, once the package is imported, the function it defines; the
    static API reader sees the module, so these functions are rendered explicitly.
    """
    module = importlib.import_module(module_name)
    found = []
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name, None)
        if callable(obj) and not isinstance(obj, type) and f"{module_name}.{name}" in sys.modules:
            found.append(f"{obj.__module__}.{obj.__qualname__}")
    return found


def render_shadowed(module_name: str) -> str:
    """mkdocstrings blocks for :func:`shadowed_functions` (expanded by mkdocstrings afterwards)."""
    blocks = [f"::: {path}\n    options:\n      show_root_heading: true\n      show_root_full_path: false\n"
              f"      heading_level: 3\n" for path in shadowed_functions(module_name)]
    if not blocks:
        return ""
    intro = (f"## Functions named like their module\n\nThese functions share their name with the module that "
             f"defines them; `from {module_name} import NAME` gives the function documented here.\n\n")
    return intro + "\n".join(blocks)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the markers: the CLI reference, and the table of shipped presets."""
    if MARKER in markdown:
        from ispkit.cli import build_parser

        markdown = markdown.replace(MARKER, render_cli_reference(build_parser()))
    markdown = SHADOWED_RE.sub(lambda m: render_shadowed(m["module"]), markdown)
    if FUSION_MARKER in markdown:
        markdown = markdown.replace(FUSION_MARKER, render_default_compiled())
    if METHODS_MARKER in markdown:
        markdown = markdown.replace(METHODS_MARKER, render_method_tables())
    if PRESETS_MARKER in markdown:
        markdown = markdown.replace(PRESETS_MARKER, render_presets_table())
    return markdown
