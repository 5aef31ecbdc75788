"""The documentation's generated parts: the CLI reference and the docstring cross-references.

The full site is built in CI (``mkdocs build --strict`` in ``.ci/run``); these
tests pin the pieces that could otherwise go missing without a build error.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
from pathlib import Path

import pytest

from ispkit.cli import build_parser

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _load_hook(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_hook_{name}", DOCS / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sections(markdown: str) -> dict[str, str]:
    """``ispkit NAME`` → the text of its section (up to the next heading of any level)."""
    parts = re.split(r"^#{2,} `(ispkit[^`]*)`\n", markdown, flags=re.MULTILINE)
    return {parts[i]: re.split(r"^#", parts[i + 1], maxsplit=1, flags=re.MULTILINE)[0]
            for i in range(1, len(parts), 2)}


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found[sub.prog] = sub
                found.update(_commands(sub))
    return found


def test_cli_reference_has_a_section_for_every_subcommand_and_option():
    hook = _load_hook("generate")
    parser = build_parser()
    markdown = hook.render_cli_reference(parser)
    sections = _sections(markdown)
    commands = _commands(parser)
    assert len(commands) >= 6  # demo render info stages models presets, at least
    assert set(sections) == set(commands)
    for prog, sub in commands.items():
        text = sections[prog]
        assert f"{prog} [-h]" in text  # the usage line
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            names = action.option_strings or [action.metavar or action.dest]
            for name in names:
                assert f"`{name}" in text, f"{prog}: {name} is missing from the CLI reference"


def test_cli_reference_replaces_its_marker_only_on_the_cli_page():
    hook = _load_hook("generate")
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert hook.MARKER in page
    out = hook.on_page_markdown(page, page=None, config=None, files=None)
    assert hook.MARKER not in out and "## `ispkit render`" in out
    assert hook.on_page_markdown("# other page\n", page=None, config=None, files=None) == "# other page\n"


def test_docstring_roles_resolve_and_a_broken_one_is_reported(caplog):
    griffe = pytest.importorskip("griffe", reason="griffe comes with the [docs] extra")
    roles = _load_hook("sphinx_roles")
    pkg = griffe.load("ispkit", search_paths=[str(DOCS.parent)], docstring_parser="numpy")
    collection = pkg.modules_collection
    obj = pkg["io.capture.capture_kind"]
    text = roles.convert("Uses :func:`read_capture`, :class:`~ispkit.frame.Frame` and "
                         ":class:`numpy.ndarray`.", collection, obj)
    assert 'identifier="ispkit.io.capture.read_capture"' in text
    assert 'identifier="ispkit.frame.Frame" optional><code>Frame</code>' in text
    assert "<code>numpy.ndarray</code>" in text and "numpy.ndarray\"" not in text
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.ispkit_docs"):
        text = roles.convert("See :func:`no_such_function`.", collection, obj)
    assert "<code>no_such_function</code>" in text
    assert any("no_such_function" in r.getMessage() and "capture_kind" in r.getMessage()
               for r in caplog.records)


def test_description_written_where_numpydoc_expects_a_type_stays_a_description():
    griffe = pytest.importorskip("griffe", reason="griffe comes with the [docs] extra")
    roles = _load_hook("sphinx_roles")
    pkg = griffe.load("ispkit", search_paths=[str(DOCS.parent)], docstring_parser="numpy",
                      extensions=griffe.load_extensions(roles.SphinxRoles()))
    sections = {s.kind.value: s.value for s in pkg["stages.demosaic.demosaic"].docstring.parsed}
    params = {p.name: p for p in sections["parameters"]}
    # 'method : a key of :data:`DEMOSAIC_METHODS`.' -> type from the signature, the words kept as description
    assert str(params["method"].annotation) == "str"
    assert params["method"].description.startswith("a key of <autoref")
    raises = [str(r.annotation) for r in sections["raises"]]
    assert "UnknownNameError" in raises and all(" : " not in r for r in raises)


def _python_block(page: str, after: str) -> str:
    """The first ```python block after the text ``after`` on a docs page."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text[text.index(after):], flags=re.DOTALL).group(1)


def test_how_to_scripts_run_as_written(tmp_path, monkeypatch, capsys):
    """The how-tos' data-making scripts run as printed (so the pages cannot drift from the API)."""
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_block("howto/inputs.md", "## One capture, three containers"), "inputs.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["capture.dng", "raw"], ["night_001.png", "ntire"],
                                                    ["night_001.json", "ntire"], ["chart_grbg.raw", "bayer"]]
    monkeypatch.setattr("sys.argv", ["make_night_folder.py", "night-in"])
    exec(compile(_python_block("howto/night-folder.md", "## A folder to try it on"), "night-folder.md", "exec"),
         {"__name__": "__main__"})
    from ispkit.io import capture_kind, read_capture

    pngs = sorted((tmp_path / "night-in").glob("*.png"))
    assert [p.name for p in pngs] == [f"night_{i:03d}.png" for i in range(4)]
    assert all(capture_kind(p) == "ntire" for p in pngs)
    assert read_capture(pngs[0]).meta.noise_profile is not None


def test_functions_shadowed_by_their_module_are_found():
    hook = _load_hook("generate")
    assert "ispkit.render.render" in hook.shadowed_functions("ispkit")
    assert "ispkit.stages.demosaic.demosaic" in hook.shadowed_functions("ispkit.stages")
    assert hook.render_shadowed("ispkit.frame") == ""
    assert "::: ispkit.render.render" in hook.render_shadowed("ispkit")
