"""Griffe extension: turn the Sphinx roles in ispkit's numpydoc docstrings into checked links.

ispkit's docstrings cross-reference with Sphinx roles (``:func:`read_capture```,
``:class:`~ispkit.frame.Frame```), which Markdown would print literally. Each
role becomes an autorefs link to the object it names, resolved the way Sphinx
resolves it: as written, then relative to the documented object, its
parents, its module and the package, then as a name defined exactly once
anywhere in ispkit. A role that names nothing in ispkit is a
broken reference: it is logged as a warning, so ``mkdocs build --strict`` fails
naming the docstring and the role. A role naming an object outside ispkit
(``numpy.ndarray``, ``ValueError``) becomes plain code.

The link is *optional* for autorefs: an object that exists but is not rendered
in the API reference (a private helper module) shows as code without a link
rather than failing the build.

A ``Class attributes`` heading (not a numpydoc section) is read as
``Attributes``. reST literal-block markers (``Quick start::``) become a single colon so the
indented block after them renders as code.

ispkit writes parameter entries as ``name : description`` (the type lives in
the signature), where numpydoc expects ``name : type``. An entry whose "type"
is not a Python expression is read as the first words of the description, and
the type is taken from the signature, so the tables show real types and whole
sentences. ``Raises`` entries written ``Error : when`` are split the same way.
"""

from __future__ import annotations

import builtins
import html
import importlib.util
import logging
import re
from functools import cached_property
from typing import Any

import griffe

# A logger under "mkdocs." counts towards `mkdocs build --strict`.
_log = logging.getLogger("mkdocs.plugins.ispkit_docs")

ROLE_RE = re.compile(
    r":(?:py:)?(?P<role>func|class|mod|meth|attr|data|obj|exc|const):"
    r"`(?P<body>[^`]+)`(?P<escape>\\ )?"
)
# "Class attributes" is not a numpydoc section; its entries are a class's attributes.
CLASS_ATTRIBUTES_RE = re.compile(r"^(?P<indent>[ \t]*)Class attributes\n[ \t]*-{3,}[ \t]*$", flags=re.MULTILINE)
LITERAL_MARKER_RE = re.compile(r"(?<=\S)::[ \t]*$", flags=re.MULTILINE)

PACKAGE = "ispkit"


def _exists(collection: griffe.ModulesCollection, path: str) -> bool:
    try:
        collection[path]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    return True


def _scopes(obj: griffe.Object | griffe.Alias) -> list[str]:
    """The object itself, then each parent up to the package."""
    scopes = []
    current: Any = obj
    while current is not None:
        scopes.append(current.path)
        current = current.parent
    return scopes


def _runtime_path(collection: griffe.ModulesCollection, path: str) -> str:
    """``ispkit.render`` names the function ``ispkit.render.render`` at run time, not its module."""
    obj = collection[path]
    name = path.rsplit(".", 1)[-1]
    if obj.is_module and name in obj.members and obj.members[name].is_function:
        return f"{path}.{name}"
    return path


def resolve(collection: griffe.ModulesCollection, obj: griffe.Object | griffe.Alias, target: str) -> str | None:
    """The full path ``target`` names when written in ``obj``'s docstring, or None."""
    target = target.lstrip(".").removesuffix("()")
    if target.split(".")[0] == PACKAGE and _exists(collection, target):
        return _runtime_path(collection, target)
    for scope in _scopes(obj):
        candidate = f"{scope}.{target}"
        if _exists(collection, candidate):
            return _runtime_path(collection, candidate)
    # Like Sphinx's search: a bare name defined exactly once anywhere in the package (e.g. a kernel in
    # a private module that the documented module imports under another name).
    matches = _index(collection).get(target, [])
    return matches[0] if len(matches) == 1 else None


_INDEX: dict[int, dict[str, list[str]]] = {}


def _index(collection: griffe.ModulesCollection) -> dict[str, list[str]]:
    """Name (and dotted tails such as ``Class.method``) → the full paths of ispkit objects defining it."""
    if id(collection) not in _INDEX:
        index: dict[str, list[str]] = {}

        def walk(obj: Any) -> None:
            for member in obj.members.values():
                if member.is_alias:
                    continue
                parts = member.path.split(".")
                for k in range(1, 3):
                    if len(parts) > k:
                        index.setdefault(".".join(parts[-k:]), []).append(member.path)
                if member.is_module or member.is_class:
                    walk(member)

        walk(collection[PACKAGE])
        _INDEX[id(collection)] = index
    return _INDEX[id(collection)]


def _is_external(target: str) -> bool:
    """A target outside ispkit: a builtin, or a module that imports from elsewhere (numpy, html …)."""
    head = target.lstrip("~.").split(".")[0]
    if head == PACKAGE:
        return False
    if hasattr(builtins, head):
        return True
    try:
        return importlib.util.find_spec(head) is not None
    except (ImportError, ValueError):
        return False


def convert(text: str, collection: griffe.ModulesCollection, obj: griffe.Object | griffe.Alias) -> str:
    """Rewrite the roles and literal markers of one docstring."""

    def replace(match: re.Match[str]) -> str:
        body = match["body"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            title, target = explicit["title"], explicit["target"]
        else:
            target = body.lstrip("~")
            title = target.split(".")[-1] if body.startswith("~") else target
        code = f"<code>{html.escape(title)}</code>"
        if _is_external(target):
            return code
        path = resolve(collection, obj, target)
        if path is None:
            _log.warning("docstring of %s: %s names nothing in %s (broken cross-reference)",
                         obj.path, match.group(0).rstrip("\\ "), PACKAGE)
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    text = ROLE_RE.sub(replace, text)
    text = CLASS_ATTRIBUTES_RE.sub(lambda m: f"{m['indent']}Attributes\n{m['indent']}----------", text)
    return LITERAL_MARKER_RE.sub(":", text)


_TYPED_KINDS = {"parameters", "other parameters", "attributes", "returns", "yields", "receives",
                "raises", "warns"}


def _signature_annotation(parent: Any, item: Any, kind: str) -> Any:
    if kind in {"parameters", "other parameters"}:
        try:
            return parent.parameters[item.name].annotation
        except (AttributeError, KeyError, TypeError):
            return None
    if kind == "attributes":
        try:
            return parent.members[item.name].annotation
        except (AttributeError, KeyError, TypeError):
            return None
    if kind == "returns":
        return getattr(parent, "returns", None)
    return None


def _exception_name(name: str, parent: Any) -> Any:
    """An exception name as an expression resolved in the docstring's scope (so it links), else the text."""
    if not re.fullmatch(r"[A-Za-z_]\w*", name) or parent is None:
        return name
    scope = parent if parent.is_module or parent.is_class else parent.parent
    return griffe.ExprName(name, parent=scope)


def fix_sections(sections: list[Any], parent: Any) -> list[Any]:
    """Move description text that numpydoc took for a type back into the description."""
    for section in sections:
        kind = section.kind.value
        if kind not in _TYPED_KINDS or not isinstance(section.value, list):
            continue
        for item in section.value:
            annotation = getattr(item, "annotation", None)
            if not isinstance(annotation, str) or not annotation:
                continue  # a parsed expression: a real type
            lead = annotation
            if kind in {"raises", "warns"}:
                head, sep, rest = annotation.partition(" : ")
                if sep:
                    item.annotation = _exception_name(head.strip(), parent)
                    lead = rest
                elif re.fullmatch(r"[A-Za-z_][\w.]*", annotation):
                    item.annotation = _exception_name(annotation, parent)
                    continue
                else:
                    item.annotation = ""
            else:
                item.annotation = _signature_annotation(parent, item, kind)
            item.description = f"{lead} {item.description}".strip() if item.description else lead
    return sections


class _FixedDocstring(griffe.Docstring):
    """A docstring whose parsed sections go through :func:`fix_sections` (parsed lazily, as usual)."""

    @cached_property
    def parsed(self) -> list[Any]:  # type: ignore[override]
        return fix_sections(self.parse(), self.parent)


class SphinxRoles(griffe.Extension):
    """Convert every ispkit docstring once the package is loaded (aliases are resolvable then)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        collection = loader.modules_collection
        seen: set[int] = set()

        def walk(obj: griffe.Object) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, collection, obj)
                obj.docstring.__dict__.pop("parsed", None)
                obj.docstring.__class__ = _FixedDocstring
            for member in obj.members.values():
                if not member.is_alias:
                    walk(member)

        walk(pkg)
