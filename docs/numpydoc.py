"""A griffe extension: marginlab's numpy docstrings read as numpydoc reads them.

- The docstrings cross-reference with Sphinx roles (``:func:`kkt_along_training```,
  ``:class:`~marginlab.runs.run.Run```, ``:mod:`.svm```), which Markdown would print as they
  are. Each role becomes an optional cross-reference to the object it names, resolved the way
  Sphinx resolves it (relative to the object whose docstring holds it, then its parents); a
  name outside the package, or one no page documents, stays plain code.
- griffe gives every name of a grouped entry (``norm, attack, eps`` on one line) the type and
  default of the first, and a ``{"a", "b"}`` entry the default ``"a"``. The default shown is
  the signature's, and each name of an untyped group gets its own annotation.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Alias, DocstringSectionKind, Extension, Module, Object

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`(~?)([^`<]+?)(?:\s*<([^>`]+)>)?`")
# A parameter entry naming several parameters and no type: "norm, attack, eps".
UNTYPED_GROUP = re.compile(r"^\s*(\w+(?:, \w+)+)\s*$", re.MULTILINE)


def _lookup(pkg: Module, path: str) -> Object | Alias | None:
    head, _, rest = path.partition(".")
    if head != pkg.name:
        return None
    try:
        return pkg[rest] if rest else pkg
    except (KeyError, ValueError, Exception):  # griffe raises its own errors for aliases too
        return None


def _scopes(obj: Object) -> list[str]:
    """Where a bare name is looked up: the object, then each parent up to the package."""
    scopes = []
    current: Object | None = obj
    while current is not None:
        scopes.append(current.path)
        current = current.parent
    return scopes


def _resolve(pkg: Module, obj: Object, target: str) -> str | None:
    if target.startswith("."):
        dots = len(target) - len(target.lstrip("."))
        module = obj.module
        base = module if module.is_package else module.parent
        for _ in range(dots - 1):
            base = base.parent if base is not None else None
        candidates = [f"{base.path}.{target.lstrip('.')}"] if base is not None else []
    else:
        candidates = [f"{scope}.{target}" for scope in _scopes(obj)] + [target]
    for candidate in candidates:
        found = _lookup(pkg, candidate)
        if found is not None:
            try:
                return found.final_target.path if isinstance(found, Alias) else found.path
            except Exception:  # an alias to something outside the package
                return found.path
    return None


def _rewrite(pkg: Module, obj: Object, text: str) -> str:
    def replace(match: re.Match) -> str:
        short, name, explicit = match.groups()
        target = (explicit or name).strip()
        title = name.strip() if explicit else (target.rsplit(".", 1)[-1] if short else target)
        path = _resolve(pkg, obj, target)
        if path is None:
            return f"`{title}`"
        return f'<autoref identifier="{path}" optional><code>{title}</code></autoref>'

    return ROLE.sub(replace, text)


def _fix_parameters(obj: Object) -> None:
    # Functions only: a dataclass's __init__ is made by griffe's own extension, after this one.
    signature = obj.parameters
    grouped = {
        name for found in UNTYPED_GROUP.finditer(obj.docstring.value)
        for name in found.group(1).split(", ")
    }  # fmt: skip
    for section in obj.docstring.parsed:
        if section.kind is not DocstringSectionKind.parameters:
            continue
        for parameter in section.value:
            if parameter.name in signature:
                own = signature[parameter.name]
                parameter.default = own.default
                if parameter.name in grouped:
                    parameter.annotation = own.annotation


class NumpyDocstrings(Extension):
    """Rewrite every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        stack: list[Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(pkg, obj, obj.docstring.value)
                if obj.is_function:
                    _fix_parameters(obj)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
