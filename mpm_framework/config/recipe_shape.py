"""Reading a recipe file with errors a user can act on: YAML syntax errors and
sections of the wrong shape (a list where a mapping belongs, a bare path where
a list of sources belongs) name the file, the line and what was expected.

Types of single values (``run.lr: abc``) are checked later against the
schemas; this module only checks the nesting the schemas cannot explain well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

MAPPING = "a mapping (indented 'key: value' lines)"
SOURCES = "a list of data sources ('- path: FILE' items)"
NAME_OR_MAPPING = "a component name or a mapping (name: ..., other settings)"
COMPONENTS = ("llm", "vision", "connector", "decoder")
SECTIONS = ("model", "data", "run", "stages")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"the value {value!r}"


def _expect(value: Any, keys: tuple[str, ...]) -> str | None:
    """What ``keys`` must hold, or None when anything goes there."""
    if len(keys) == 1:
        return MAPPING
    head, rest = keys[0], keys[1:]
    if head == "stages":
        if len(rest) == 1:
            return MAPPING  # stages.<name>
        return _expect(value, rest[1:]) if len(rest) >= 2 and rest[1] in ("run", "data") else None
    if head == "model" and len(rest) == 1 and rest[0] in COMPONENTS:
        return NAME_OR_MAPPING
    if head == "data" and len(rest) == 1 and rest[0] in ("train", "eval"):
        return SOURCES
    if head == "run" and len(rest) == 1 and rest[0] in ("lora", "extra"):
        return MAPPING
    return None


def _fits(value: Any, expected: str) -> bool:
    if value is None:
        return True  # an empty section: the defaults
    if expected == MAPPING:
        return isinstance(value, dict)
    if expected == NAME_OR_MAPPING:
        return isinstance(value, (str, dict))
    if expected == SOURCES:
        return isinstance(value, list) and all(isinstance(item, dict) for item in value)
    return True


def _walk(value: Any, keys: tuple[str, ...]):
    """Yield ``(keys, value)`` for every node whose shape is prescribed."""
    expected = _expect(value, keys)
    if expected is not None:
        yield keys, value, expected
    if isinstance(value, dict) and (expected == MAPPING or keys[0] == "stages"):
        for key, child in value.items():
            yield from _walk(child, (*keys, str(key)))


def _hint(keys: tuple[str, ...], value: Any, expected: str) -> str:
    if expected == SOURCES and isinstance(value, str):
        return f" Write: {keys[-1]}: [{{path: {value}}}]"
    if expected == SOURCES and isinstance(value, list):
        bad = next(item for item in value if not isinstance(item, dict))
        return f" (item {_kind(bad)} is not a source; each item needs 'path: ...')"
    return ""


def check_shape(data: dict[str, Any], where: str, node: yaml.Node | None = None) -> None:
    """Raise :class:`ConfigError` for the first section of the wrong shape;
    ``node`` (the composed YAML) supplies line numbers."""
    for section, value in data.items():
        if section not in SECTIONS:
            continue  # unknown sections are reported with suggestions by resolve_config
        for keys, found, expected in _walk(value, (str(section),)):
            if not _fits(found, expected):
                line = _line(node, keys)
                at = f"{where}, line {line}" if line else where
                raise ConfigError(f"{at}: '{'.'.join(keys)}' must be {expected}, "
                                  f"got {_kind(found)}.{_hint(keys, found, expected)}")


def _line(node: yaml.Node | None, keys: tuple[str, ...]) -> int | None:
    """1-based line of the value at ``keys`` in a composed YAML document."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    return node.start_mark.line + 1 if node is not None else None


def syntax_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    """A YAML parser error as ``FILE, line L, column C: problem``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    context = getattr(exc, "context", None)
    at = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    hint = ""
    if "\\t" in problem or "\t" in problem:
        hint = " (YAML indents with spaces, not tabs)"
    elif mark is not None:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if 0 <= mark.line < len(lines):
            hint = f": {lines[mark.line].strip()!r}" if lines[mark.line].strip() else ""
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        context = f"{context} (line {context_mark.line + 1}, column {context_mark.column + 1})"
    detail = f" {context}," if context else ""
    return ConfigError(f"{at}: YAML syntax error:{detail} {problem}{hint}")


def compose_file(path: Path) -> yaml.Node | None:
    """The file's YAML node tree (positions of every value) or a syntax error."""
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise syntax_error(path, exc) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): is it a recipe YAML?") from None
