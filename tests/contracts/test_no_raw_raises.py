"""User-facing errors are ``MPMError``s: no raw builtin raises outside a reasoned list.

The CLI prints an :class:`mpm_framework.errors.MPMError` as one line and a raw
``ValueError``/``TypeError``/``RuntimeError``/``KeyError`` with a traceback, so a
bad config, file or request must raise an ``MPMError`` subclass (``ConfigError``,
``DataError``, ``ExecutionError``, ...; each also inherits the builtin it
replaces, so callers' ``except ValueError`` keep working) with a message that
says what to do. What stays raw is a programmer's mistake (an internal
invariant, an API called wrongly by code), listed below with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mpm_framework

REPO = Path(mpm_framework.__file__).resolve().parent.parent
RAW = frozenset({"ValueError", "TypeError", "RuntimeError", "KeyError"})

#: (file relative to the repository root, enclosing function) -> why the raw raise stays.
ALLOWED = {
    ("mpm_framework/contracts/prompt.py", "PromptEncoding.__post_init__"):
        "a plugin's prompt code built fields of different lengths: a bug in the plugin, not the user's input",
    ("mpm_framework/evaluation/alignment.py", "alignment_from_states"):
        "both pooled tensors come from pooled_states over the same sentence pairs: an internal invariant",
    ("mpm_framework/training/sources.py", "RecordSource.__len__"):
        "len() of an unsized object raises TypeError in Python; the pipeline checks `sized` before asking",
    ("mpm_framework/training/sources.py", "RecordSource.get"):
        "random access on a streaming source: the pipeline checks `sized` before asking",
    ("plugins/mpm-llm-cpm-bee/mpm_llm_cpm_bee/pivot.py", "CPMBeeLLM.collate"):
        "padding_side is chosen by the core (right for training, left for generation), never by a user",
    ("plugins/mpm-llm-cpm-bee/mpm_llm_cpm_bee/pivot.py", "CPMBeeLLM.prefill"):
        "the core's generation collates left-padded batches; only code calling prefill by hand can miss it",
    ("plugins/mpm-llm-llama/mpm_llm_llama/model.py", "HFCausalLM.collate"):
        "padding_side is chosen by the core (right for training, left for generation), never by a user",
    ("plugins/mpm-llm-llama/mpm_llm_llama/toy.py", "tiny_llama_config"):
        "a test/toy helper called without its required argument: a programming error",
    ("plugins/mpm-toyworld/mpm_toyworld/render.py", "_draw"):
        "scenes come from the toy world's own generator, whose shapes are the ones drawn here",
    ("plugins/mpm-toyworld/mpm_toyworld/stats.py", "paired_difference"):
        "both sides come from the same experiment's seeds and scenes: an internal invariant",
    ("plugins/mpm-toyworld/mpm_toyworld/paint_experiment.py", "apply_settings"):
        "raised and caught in the same function, which turns it into a ConfigError naming the setting",
    ("plugins/mpm-toyworld/mpm_toyworld/split.py", "sample_split_scene"):
        "callers pass the module's own split names (SPLITS); no user value reaches it",
    ("plugins/mpm-toyworld/mpm_toyworld/scoring.py", "score_responses"):
        "the experiment generates one response per item: an internal invariant",
    ("languages/mpm-lang-de/mpm_lang_de/grammar.py", "noun_phrase"):
        "the grammar calls it with its own case/article constants: a programming error in the pack",
    ("languages/mpm-lang-zh/mpm_lang_zh/grammar.py", "noun_phrase"):
        "the grammar calls it with its own word-order constants: a programming error in the pack",
}


def source_files() -> list[Path]:
    """The framework and every plugin's, language pack's and example plugin's package, tests left out."""
    files = sorted((REPO / "mpm_framework").rglob("*.py"))
    for group in ("plugins", "languages", "examples"):
        for dist in sorted((REPO / group).glob("*/")):
            for path in sorted(dist.rglob("*.py")):
                rel = path.relative_to(dist).parts
                if rel[0] in ("tests", "build") or path.name == "setup.py":
                    continue
                files.append(path)
    return files


def raw_raises(source: str) -> list[tuple[str, int, str]]:
    """``(enclosing function, line, exception)`` of each ``raise`` of a builtin in ``RAW``."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                if isinstance(exc, ast.Name) and exc.id in RAW:
                    found.append((".".join(scope) or "<module>", child.lineno, exc.id))
            visit(child, scope)

    visit(ast.parse(source), [])
    return found


def test_raw_raises_finds_calls_names_and_scopes():
    source = (
        "def f():\n    raise ValueError('x')\n"
        "class A:\n    def g(self):\n        if 1:\n            raise KeyError\n"
        "raise RuntimeError()\n"
        "def h():\n    raise ConfigError('x')\n    raise OSError('y')\n    raise\n"
    )
    assert raw_raises(source) == [("f", 2, "ValueError"), ("A.g", 6, "KeyError"), ("<module>", 7, "RuntimeError")]


def test_no_raw_user_facing_raises():
    found = []
    seen = set()
    for path in source_files():
        rel = path.relative_to(REPO).as_posix()
        for scope, line, exc in raw_raises(path.read_text(encoding="utf-8")):
            seen.add((rel, scope))
            if (rel, scope) not in ALLOWED:
                found.append(f"{rel}:{line} ({scope}): raise {exc}")
    assert not found, (
        "raw builtin raises: raise an mpm_framework.errors.MPMError subclass (ConfigError, DataError, "
        "ExecutionError, ...; they inherit the builtin too) with a message that says what to do, or, for a "
        "programmer's mistake, add the function to ALLOWED with the reason:\n" + "\n".join(found)
    )
    stale = sorted(set(ALLOWED) - seen)
    assert not stale, f"ALLOWED names functions without a raw raise any more; remove them: {stale}"
