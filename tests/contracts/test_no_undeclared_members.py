"""The core reaches for no undeclared member of a component or stack.

What a stage, the trainer, a stack or the planner reads from a component must be
declared on its contract (``mpm_framework/contracts``) or on the stack base
(``mpm_framework/stacks/base.py``), with a default there; ``hasattr(x, "name")``
or ``getattr(x, "name", default)`` on a component is an undocumented contract
a plugin author can only learn by reading the core. Each remaining call is
listed below with the reason it stays.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mpm_framework

ROOT = Path(mpm_framework.__file__).parent

#: The code that drives components: stages, trainer, stacks, the memory planner.
SCANNED = [
    "training/stages.py",
    "training/trainer.py",
    "paint/stage.py",
    "paint/sampling.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "stacks").glob("*.py")),
    "planning/estimate.py",
    "planning/flops.py",
]

#: (file, attribute name or "<dynamic>") -> why the call stays.
ALLOWED = {
    ("training/stages.py", "rng"): "the image transform is any callable, not a component; one that "
                                   "carries a random.Random is reseeded per sample for exact resume",
}


def reflective_calls(source: str) -> list[tuple[str, int, str]]:
    """``(function, line, attribute)`` of every hasattr/getattr call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr"):
            name = node.args[1] if len(node.args) > 1 else None
            attr = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else "<dynamic>"
            found.append((node.func.id, node.lineno, attr))
    return found


def test_reflective_calls_finds_both_forms():
    calls = reflective_calls("hasattr(m, 'a')\ngetattr(m, 'b', None)\ngetattr(m, name)\nm.getattr('c')\n")
    assert calls == [("hasattr", 1, "a"), ("getattr", 2, "b"), ("getattr", 3, "<dynamic>")]


def test_core_reads_only_declared_members():
    undeclared = []
    for rel in SCANNED:
        path = ROOT / rel
        if not path.exists():  # a module moved away takes its calls with it
            continue
        for func, line, attr in reflective_calls(path.read_text(encoding="utf-8")):
            if (rel, attr) not in ALLOWED:
                undeclared.append(f"mpm_framework/{rel}:{line}: {func}(..., {attr!r})")
    assert not undeclared, (
        "the core reaches for members no contract declares; declare them (with a default) on the "
        "contract in mpm_framework/contracts or on mpm_framework/stacks/base.py:Stack, or add the call to "
        "ALLOWED with the reason it stays:\n" + "\n".join(undeclared)
    )


def test_allowed_entries_name_scanned_files():
    assert {rel for rel, _ in ALLOWED} <= set(SCANNED)
