"""``mpm lang new CODE``: write a language pack distribution that installs and
passes its own tests at once (torch-free).

The pack is the minimal one — identity, phrases, calibration set — with the
English texts in place of translations, each marked ``"untranslated"`` in the
pack's ``review`` marks, so ``mpm lang check`` lists exactly what is left to
write. Tokenisation (the stanza route) and language identification (lingua)
are the contract's defaults. A toy grammar is optional and not scaffolded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MPMError
from .identity import LanguageIdentity, identity_for


@dataclass
class Texts:
    """The texts a pack translates, with their review marks.

    ``review`` maps ``"caption prompt N"``, a phrase key or ``"calibration N"``
    (1-based) to ``"untranslated"`` or ``"machine-translated"``."""

    caption_prompts: list[str]
    phrases: dict[str, str]
    pairs: list[tuple[str, str, str, str]]  # (instruction_en, response_en, instruction, response)
    review: dict[str, str] = field(default_factory=dict)


def english_texts(identity: LanguageIdentity) -> Texts:
    """The English originals, every one marked untranslated ("answer in English"
    becomes "answer in <language>": that is what the translation must say)."""
    from ..lang_en.calibration import PAIRS
    from ..lang_en.pack import EnglishPack

    en = EnglishPack()
    phrases = {k: v.replace("in English", f"in {identity.name}") for k, v in en.phrases.items()}
    prompts = list(en.caption_prompts)
    review = {f"caption prompt {i + 1}": "untranslated" for i in range(len(prompts))}
    review.update({k: "untranslated" for k in phrases})
    review.update({f"calibration {i + 1}": "untranslated" for i in range(len(PAIRS))})
    return Texts(prompts, phrases, [(q, a, q, a) for q, a in PAIRS], review)


def _s(text: str) -> str:
    """A Python string literal (double quotes, non-ASCII kept)."""
    return json.dumps(text, ensure_ascii=False)


def _phrases_py(ident: LanguageIdentity, texts: Texts) -> str:
    from ..contracts.language import PHRASE_KEYS

    marks = {k: v for k, v in texts.review.items() if not k.startswith("calibration ")}
    lines = [
        f'"""{ident.name} prompts and phrases.',
        "",
        f"Translate every text into {ident.name} (keep placeholders in braces, such as",
        "{path}), then delete its entry from REVIEW: `mpm lang check " + ident.code + "` lists what",
        'is left. Entries marked "machine-translated" need a speaker\'s review."""',
        "",
        "# Several phrasings of \"describe the image\" (captioning prompts).",
        "CAPTION_PROMPTS: tuple[str, ...] = (",
        *[f"    {_s(p)}," for p in texts.caption_prompts],
        ")",
        "",
        "PHRASES: dict[str, str] = {",
    ]
    for key, text in texts.phrases.items():
        lines += [f"    # {PHRASE_KEYS.get(key, '')}", f"    {_s(key)}: {_s(text)},"]
    lines += ["}", "", '# entry -> "untranslated" | "machine-translated"; delete an entry once a speaker checked it',
              "REVIEW: dict[str, str] = {"]
    lines += [f"    {_s(k)}: {_s(v)}," for k, v in marks.items()]
    lines += ["}", ""]
    return "\n".join(lines)


def _calibration_py(ident: LanguageIdentity, texts: Texts) -> str:
    marks = {k: v for k, v in texts.review.items() if k.startswith("calibration ")}
    lines = [
        f'"""{ident.name} calibration pairs: (English instruction, English response,',
        f"{ident.name} instruction, {ident.name} response).",
        "",
        "English-only instruction tuning gives a model that understands the language but",
        "answers in English; a small share of these pairs calibrates the response language.",
        "Translate the last two texts of every pair by hand (not from a public data set),",
        "keep the English side and the order unchanged, then delete the pair from REVIEW.",
        '"""',
        "",
        "PAIRS: list[tuple[str, str, str, str]] = [",
    ]
    for q_en, a_en, q, a in texts.pairs:
        lines += [f"    ({_s(q_en)}, {_s(a_en)},", f"     {_s(q)},", f"     {_s(a)}),"]
    lines += ["]", "", '# "calibration N" (1-based) -> "untranslated" | "machine-translated"',
              "REVIEW: dict[str, str] = {"]
    lines += [f"    {_s(k)}: {_s(v)}," for k, v in marks.items()]
    lines += ["}", ""]
    return "\n".join(lines)


def _pack_py(ident: LanguageIdentity) -> str:
    return f'''"""The {ident.name} pack: identity here, texts in phrases.py and calibration.py.

Made by `mpm lang new {ident.code}`. Tokenisation for metrics (stanza, offline
without models) and language identification (lingua) are the contract's
defaults; a toy-world grammar is optional (docs/language-packs.md).
"""

from __future__ import annotations

from mpm_framework.contracts.language import CalibrationPair, LanguagePack

from . import calibration as _calibration
from . import phrases as _phrases


class {ident.class_name}(LanguagePack):
    code = {_s(ident.code)}
    name = {_s(ident.name)}
    native_name = {_s(ident.native_name)}
    script = {_s(ident.script)}  # ISO 15924
    lingua_name = {_s(ident.lingua_name)}  # lingua.Language member
    caption_prompts = _phrases.CAPTION_PROMPTS
    phrases = _phrases.PHRASES

    def calibration(self) -> list[CalibrationPair]:
        return [CalibrationPair(q, a, q_en, a_en) for q_en, a_en, q, a in _calibration.PAIRS]

    @property
    def review(self) -> dict[str, str]:
        """Entries a speaker has not checked yet (`mpm lang check` lists them)."""
        return {{**_phrases.REVIEW, **_calibration.REVIEW}}
'''


def _plugin_py(ident: LanguageIdentity, aliases: Sequence[str]) -> str:
    return f'''"""Registration only: no torch, no pack import (``mpm plugins list`` stays fast)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register({_s(ident.code)}, "{ident.module}.pack:{ident.class_name}", aliases={json.dumps(list(aliases), ensure_ascii=False)},
             description={_s(f"{ident.name} / {ident.native_name}")})
'''


def _pyproject(ident: LanguageIdentity) -> str:
    return f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{ident.distribution}"
version = "0.1.0"
description = "{ident.name} language pack for MPM: prompts, phrases, calibration pairs."
readme = "README.md"
requires-python = ">=3.10"
license = {{ text = "Apache-2.0" }}
dependencies = [
    "mpm-framework>=0.1",
    "stanza>=1.9",
    "lingua-language-detector>=2.0",
]

# The entry-point name is the import name, so it is globally unique.
[project.entry-points.mpm]
{ident.module} = "{ident.module}.plugin"

[tool.setuptools.packages.find]
include = ["{ident.module}*"]
'''


def _readme(ident: LanguageIdentity, folder: str) -> str:
    return f'''# {ident.distribution} — {ident.name} ({ident.native_name}) for MPM

Made by `mpm lang new {ident.code}`.

```bash
pip install -e ./{folder}                 # or: pip install ./{folder}
mpm lang list                             # {ident.code}  {ident.name} / {ident.native_name}
mpm lang check {ident.code}                       # what is left before publishing
python -m pytest {folder}/tests -q
```

| file | what it holds | left to write |
|---|---|---|
| `{ident.module}/pack.py` | identity: `{ident.code}`, {ident.name} / {ident.native_name}, script {ident.script}, lingua `{ident.lingua_name}` | check the native name and script |
| `{ident.module}/phrases.py` | caption prompts and the chat/paint phrases | translate each, delete its `REVIEW` entry |
| `{ident.module}/calibration.py` | instruction → response pairs with the English originals | translate each pair by hand, delete its `REVIEW` entry |
| `{ident.module}/plugin.py` | registration (code, aliases) | nothing |
| `tests/` | `check_language_pack`: sound now; ready to publish once `REVIEW` is empty | nothing |

Tokenisation for metrics and language identification are inherited; the toy
world's grammar is optional (see docs/language-packs.md, "Adding a toy grammar").
'''


def _tests(ident: LanguageIdentity) -> dict[str, str]:
    conftest = f'''"""Lets the tests run from a checkout before the pack is installed."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("{ident.module}") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
'''
    test = f'''"""The shared conformance check of MPM language packs, on the {ident.name} pack."""

import pytest
from {ident.module}.pack import {ident.class_name}

from mpm_framework.testing import check_language_pack

PACK = {ident.class_name}()


def test_the_pack_is_sound():
    """Contract, calibration set, offline word segmentation; untranslated entries are only warnings here."""
    check_language_pack(PACK, require_translated=False)


@pytest.mark.xfail(bool(PACK.review), reason="entries still marked in REVIEW (phrases.py, calibration.py)")
def test_ready_to_publish():
    """Everything translated and identified as {ident.name}: what `mpm lang check {ident.code}` requires."""
    check_language_pack(PACK)
    assert PACK.review == {{}}
'''
    return {"conftest.py": conftest, f"test_lang_{ident.module[len('mpm_lang_'):]}_pack.py": test}


def aliases_for(ident: LanguageIdentity) -> list[str]:
    out = [ident.name.lower()]
    native = ident.native_name.lower()
    if native not in out and native != ident.code:
        out.append(native)
    return out


def write_pack(code: str, out: str | Path | None = None, *, texts: Texts | None = None,
               force: bool = False) -> Path:
    """Write the pack for ``code`` into ``out`` (default ``./mpm-lang-CODE``); return the folder."""
    ident = identity_for(code)
    folder = Path(out) if out is not None else Path(ident.distribution)
    if folder.exists() and any(folder.iterdir()) and not force:
        raise MPMError(f"{folder} exists and is not empty (choose another --out, or --force to overwrite)")
    texts = texts or english_texts(ident)
    files = {
        "pyproject.toml": _pyproject(ident),
        "README.md": _readme(ident, folder.name),
        f"{ident.module}/__init__.py": f'"""{ident.name} ({ident.native_name}) language pack for MPM."""\n',
        f"{ident.module}/plugin.py": _plugin_py(ident, aliases_for(ident)),
        f"{ident.module}/pack.py": _pack_py(ident),
        f"{ident.module}/phrases.py": _phrases_py(ident, texts),
        f"{ident.module}/calibration.py": _calibration_py(ident, texts),
        **{f"tests/{name}": text for name, text in _tests(ident).items()},
    }
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
