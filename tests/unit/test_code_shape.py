"""Code shape: no function or method in ``orchestration/`` is longer than 120 lines.

A function's length is counted from its ``def`` line to its last line (docstring included,
decorators not), as ``ast`` reports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "orchestration"
MAX_FUNCTION_LINES = 120


def _function_lengths(source: str) -> list[tuple[int, str, int]]:
    """``(line, name, length)`` of every function and method in ``source``, nested ones too."""
    return [
        (node.lineno, node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def _too_long(limit: int = MAX_FUNCTION_LINES) -> tuple[list[str], int]:
    """Offenders as ``<file>:<line> <function> has N lines (limit L)``, and functions seen."""
    offenders: list[str] = []
    seen = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, name, length in _function_lengths(path.read_text(encoding="utf-8")):
            seen += 1
            if length > limit:
                where = path.relative_to(REPO).as_posix()
                offenders.append(f"{where}:{line} {name} has {length} lines (limit {limit})")
    return offenders, seen


def test_the_measure_counts_def_to_last_line_for_functions_and_methods() -> None:
    source = (
        "def f():\n    x = 1\n    return x\n\n\nclass C:\n    async def m(self):\n        pass\n"
    )
    assert _function_lengths(source) == [(1, "f", 3), (7, "m", 2)]


def test_no_function_in_orchestration_is_over_the_limit() -> None:
    offenders, seen = _too_long()
    assert seen > 100, f"only {seen} functions found under {PACKAGE}: is the path right?"
    assert not offenders, "functions over the limit:\n" + "\n".join(offenders)
