"""``mpm lang check`` / ``check_language_pack``: what passes, what fails and why."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mpm_framework.cli.main import cli
from mpm_framework.langkit.check import check_pack
from mpm_framework.langkit.identity import UnknownLanguageError, identity_for
from mpm_framework.langkit.scaffold import Texts, english_texts, write_pack
from mpm_framework.testing import check_language_pack, mpm_plugin  # noqa: F401  (fixture)

it_pack = pytest.importorskip("mpm_lang_it.pack")


def swahili_texts() -> tuple:
    """The Swahili texts of swahili_texts.py (loaded by path: the suite imports test files by path)."""
    spec = importlib.util.spec_from_file_location("mpm_test_swahili_texts", Path(__file__).with_name("swahili_texts.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CAPTION_PROMPTS, module.PHRASES, module.PAIRS


def _statuses(report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report.findings:
        out.setdefault(f.check, set()).add(f.status)
    return out


@pytest.fixture
def scaffold(tmp_path, monkeypatch, mpm_plugin):  # noqa: F811
    """Write a pack with ``mpm lang new``'s writer, import it from its folder and register its plugin."""
    made: list[str] = []

    def make(code: str, texts: Texts | None = None):
        ident = identity_for(code)
        folder = write_pack(code, tmp_path / ident.distribution, texts=texts)
        monkeypatch.syspath_prepend(str(folder))
        made.append(ident.module)
        mpm_plugin(importlib.import_module(f"{ident.module}.plugin"), name=ident.module)
        return getattr(importlib.import_module(f"{ident.module}.pack"), ident.class_name)()

    yield make
    for name in [m for m in sys.modules if m.split(".")[0] in made]:
        del sys.modules[name]


def test_a_shipped_pack_with_grammar_is_ready():
    report = check_language_pack(it_pack.ItalianPack(), scenes=50)
    assert report.ok and _statuses(report)["toy grammar"] == {"ok"}
    assert _statuses(report)["toy language ID"] == {"ok"} and _statuses(report)["calibration"] == {"ok"}


def test_an_untranslated_scaffold_fails_and_lists_its_english_phrases(scaffold):
    pack = scaffold("sw")
    report = check_pack(pack, scenes=0)
    assert not report.ok
    phrases = next(f for f in report.findings if f.check == "phrases" and f.status == "fail")
    assert len(phrases.items) == len(pack.phrases) + len(pack.caption_prompts)
    assert "phrase 'chat_goodbye': 'Goodbye!'" in phrases.items
    assert any(f.check == "calibration" and f.status == "fail" and "64 of 64 pairs are untranslated" in f.message
               for f in report.findings)
    assert _statuses(report)["toy grammar"] == {"skip"} and _statuses(report)["word segmentation"] == {"ok"}
    # the scaffold's own structural test passes: untranslated entries are only warnings there
    assert check_language_pack(pack, require_translated=False).ok


def test_cli_exit_status_and_report(scaffold):
    scaffold("sw")
    result = CliRunner().invoke(cli, ["lang", "check", "sw", "--scenes", "0"])
    assert result.exit_code == 1, result.output
    assert "[FAIL] phrases: 15 of 15 phrases and prompts are untranslated" in result.output
    assert "not ready: 2 checks failed" in result.output
    allowed = CliRunner().invoke(cli, ["lang", "check", "sw", "--scenes", "0", "--allow-untranslated"])
    assert allowed.exit_code == 0 and "ready to publish" in allowed.output
    unknown = CliRunner().invoke(cli, ["lang", "check", "swx"])
    assert unknown.exit_code != 0 and "sw" in unknown.output


def test_a_phrase_left_in_english_is_named(scaffold):
    CAPTION_PROMPTS, PHRASES, PAIRS = swahili_texts()
    en = english_texts(identity_for("sw"))
    phrases = {**PHRASES, "chat_exit_hint": "Type 'exit' or press Ctrl-D to leave the chat."}  # forgotten
    texts = Texts(list(CAPTION_PROMPTS), phrases, [(q, a, sq, sa) for (q, a, _, _), (sq, sa) in zip(en.pairs, PAIRS)])
    report = check_pack(scaffold("sw", texts), scenes=0)
    failed = report.failed()
    assert [f.check for f in failed] == ["phrases"]
    assert failed[0].items == ["phrase 'chat_exit_hint': \"Type 'exit' or press Ctrl-D to leave the chat.\" reads as English"]


class _WrongColours(it_pack.ItalianPack):
    def realise_answer(self, q, rng):  # "rosso" for every colour: the parser reads it back as red
        answer = super().realise_answer(q, rng)
        return "Rosso." if q.kind == "color" else answer


class _EnglishCaptions(it_pack.ItalianPack):
    def realise_caption(self, scene, rng, template=None):
        from mpm_framework.lang_en.pack import EnglishPack

        return EnglishPack().realise_caption(scene, rng)

    def parse_caption(self, text):
        from mpm_framework.lang_en.pack import EnglishPack

        return EnglishPack().parse_caption(text)


def test_a_broken_grammar_fails_the_round_trip():
    report = check_pack(_WrongColours(), scenes=30)
    grammar = next(f for f in report.findings if f.check == "toy grammar")
    assert grammar.status == "fail" and "parses as 'red', not" in grammar.items[0]


def test_captions_in_another_language_fail_language_id():
    report = check_pack(_EnglishCaptions(), scenes=30)
    assert _statuses(report)["toy grammar"] == {"ok"}  # they parse back...
    language = next(f for f in report.findings if f.check == "toy language ID")
    assert language.status == "fail" and "identified as en" in language.items[0]  # ...but are English


def test_ambiguous_one_word_answers_are_not_misidentifications():
    """'Verde.' is Spanish, Italian and Portuguese: lingua picks one, and that is no error."""
    from mpm_framework.text import langid

    es = pytest.importorskip("mpm_lang_es.pack").SpanishPack()
    pt = pytest.importorskip("mpm_lang_pt.pack").PortuguesePack()
    italian = it_pack.ItalianPack()
    assert langid.identify("Verde.", [italian, es, pt]) in {"es", "pt"}
    report = check_pack(italian, candidates=[es, pt], scenes=40)  # the Italian answers include "Verde."
    assert _statuses(report)["toy language ID"] == {"ok"}


def test_identity_from_lingua_and_iso_data():
    assert identity_for("sw") == identity_for("swa")  # ISO 639-1 or 639-3
    ident = identity_for("pt_br")
    assert (ident.code, ident.name, ident.native_name, ident.script, ident.module) == (
        "pt-BR", "Portuguese", "Português", "Latn", "mpm_lang_pt_br")
    assert identity_for("zh-Hant").script == "Hant" and identity_for("ja").script == "Jpan"
    assert identity_for("nb").class_name == "NorwegianBokmalPack"
    assert identity_for("Swahili").code == "sw"  # an English name works too
    with pytest.raises(UnknownLanguageError, match="Did you mean 'swahili'"):
        identity_for("swahilli")
    with pytest.raises(UnknownLanguageError, match="neither a BCP-47"):
        identity_for("english!")
