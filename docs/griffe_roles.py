"""Griffe extension: Sphinx roles in docstrings become mkdocstrings cross-references.

The docstrings use Sphinx roles (``:class:`Orchestrator```, ``:meth:`~Attachment.detach```,
``:data:`PRESETS```), which Markdown would show as they are. When a package is
loaded, this extension rewrites each role in every docstring of the package:

* a name that Griffe resolves in the docstring's scope (its object, then the enclosing
  class and module, their imports, or a full dotted path) to an object of a loaded
  package becomes an *optional* autoref: a link where the target is documented, plain
  code where it is not (a private helper);
* a name that resolves to an object outside the loaded packages (``threading.Thread``,
  a builtin such as ``None``)
  becomes plain code: there is no inventory to check it against offline;
* a name that does not resolve becomes a *required* cross-reference, which
  ``mkdocs build --strict`` fails on ("Could not find cross-reference target"), so a
  renamed or misspelt target breaks the build instead of rendering as raw text.

``~`` shows only the last component (as in Sphinx); ``title <target>`` shows the title.
Loaded by mkdocstrings (``options.extensions`` in mkdocs.yml).
"""

from __future__ import annotations

import builtins
import html
import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|attr|data|exc|mod|obj|const|type)"
    r":`(?P<body>[^`]+)`"
)


def _parse(body: str) -> tuple[str, str]:
    """``(shown text, target)`` of a role's body."""
    explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", body)
    if explicit:
        return explicit["title"], explicit["target"].lstrip("!~.")
    target = body.lstrip("!")
    shown = target.lstrip("~")
    if target.startswith("~"):
        shown = shown.rsplit(".", 1)[-1]
    return shown.lstrip("."), target.lstrip("~.")


def _lookup(collection: griffe.ModulesCollection, path: str) -> griffe.Object | None:
    try:
        found = collection[path]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return found.final_target if isinstance(found, griffe.Alias) else found  # type: ignore[no-any-return]


def resolve(
    obj: griffe.Object, target: str, collection: griffe.ModulesCollection
) -> tuple[str, bool] | None:
    """``(full path, inside the loaded packages)`` of ``target`` seen from ``obj``.

    ``None`` when the name resolves nowhere.
    """
    name = target.removesuffix("()")
    head, _, rest = name.partition(".")
    candidates = [name]  # a full dotted path
    scope: griffe.Object | None = obj
    while scope is not None:  # the object, its class, its module, their imports
        try:
            base = scope.resolve(head)
        except griffe.NameResolutionError:
            pass
        else:
            candidates.append(f"{base}.{rest}" if rest else base)
            break
        scope = scope.parent
    for path in candidates:
        if _lookup(collection, path) is not None:
            return path, True
    for path in candidates[1:]:
        if path.split(".", 1)[0] not in collection.members:
            return path, False  # imported from elsewhere (the standard library, ...)
    if len(candidates) == 1 and hasattr(builtins, head):
        return name, False  # None, ValueError, ...
    return None


def rewrite(text: str, obj: griffe.Object, collection: griffe.ModulesCollection) -> str:
    """``text`` with every Sphinx role replaced by a cross-reference (see the module)."""

    def replace(match: re.Match[str]) -> str:
        shown, target = _parse(match["body"])
        code = f"<code>{html.escape(shown)}</code>"
        found = resolve(obj, target, collection)
        if found is None:
            return f"[{code}][{target.removesuffix('()')}]"  # required: strict fails
        path, ours = found
        if not ours:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    return ROLE.sub(replace, text)


def _objects(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found.extend(_objects(member))  # type: ignore[arg-type]
    return found


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of a package's docstrings once it is fully loaded."""

    def on_package(
        self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any
    ) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None and ROLE.search(obj.docstring.value):
                obj.docstring.value = rewrite(
                    obj.docstring.value, obj, loader.modules_collection
                )
