"""The error messages a module can raise or report, read from its source (for the guide's test).

Every ``self.add(...)`` (a raw-data problem) and every ``raise X(...)`` / ``ValueError(...)``
message of a module is returned as a template: literal text as written, each interpolated value
as ``<...>``. The guide (docs/bring-your-own-data.md) must contain each template's literal
fragments, so a new or reworded message fails the test until it is documented.
"""

from __future__ import annotations

import ast
from pathlib import Path


def _template(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "<...>" for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        if left is None and right is None:
            return None
        return (left or "<...>") + (right or "<...>")
    return None


def messages(path: Path, calls: tuple[str, ...]) -> list[str]:
    """The message templates passed to the callables named ``calls`` in the module at ``path``."""
    tree = ast.parse(Path(path).read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in calls:
            text = _template(node.args[0])
            if text and text.strip("<.> "):
                found.append(text)
    return found


def fragments(template: str, shortest: int = 12) -> list[str]:
    """The literal pieces of a template long enough to identify it."""
    pieces = [p.strip() for p in template.split("<...>")]
    return [p for p in pieces if len(p) >= shortest]
