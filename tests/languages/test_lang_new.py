"""``mpm lang new``: the scaffold installs, passes its own tests at once, fails
``mpm lang check`` while it is English, and passes it once translated."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mpm_framework.cli.main import cli
from mpm_framework.langkit.identity import identity_for
from mpm_framework.langkit.scaffold import Texts, english_texts, write_pack

HERE = Path(__file__).resolve().parent
ENV = {k: v for k, v in os.environ.items() if k not in ("MPM_PLUGINS", "MPM_DISABLE_PLUGIN_AUTOLOAD")}


def _swahili() -> Texts:
    """The scaffold's texts with a speaker's Swahili filled in (swahili_texts.py), nothing left to review."""
    spec = importlib.util.spec_from_file_location("mpm_test_swahili_texts", HERE / "swahili_texts.py")
    sw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sw)
    en = english_texts(identity_for("sw"))
    pairs = [(q_en, a_en, q, a) for (q_en, a_en, _, _), (q, a) in zip(en.pairs, sw.PAIRS, strict=True)]
    return Texts(list(sw.CAPTION_PROMPTS), dict(sw.PHRASES), pairs, {})


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=ENV, cwd=cwd)


def _mpm(*args: str) -> subprocess.CompletedProcess:
    return _run("-m", "mpm_framework.cli.main", *args)


def test_scaffold_files_and_line_count(tmp_path):
    result = CliRunner().invoke(cli, ["lang", "new", "sw", "--out", str(tmp_path / "mpm-lang-sw")])
    assert result.exit_code == 0, result.output
    assert "79 entries untranslated" in result.output and "mpm lang check sw" in result.output
    folder = tmp_path / "mpm-lang-sw"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "mpm_lang_sw/__init__.py", "mpm_lang_sw/calibration.py", "mpm_lang_sw/pack.py",
                     "mpm_lang_sw/phrases.py", "mpm_lang_sw/plugin.py", "pyproject.toml", "tests/conftest.py",
                     "tests/test_lang_sw_pack.py"]
    pack = (folder / "mpm_lang_sw" / "pack.py").read_text()
    for line in ('code = "sw"', 'name = "Swahili"', 'native_name = "Kiswahili"', 'script = "Latn"',
                 'lingua_name = "SWAHILI"', "class SwahiliPack(LanguagePack):"):
        assert line in pack
    assert 'mpm_lang_sw = "mpm_lang_sw.plugin"' in (folder / "pyproject.toml").read_text()
    assert '"chat_goodbye": "untranslated"' in (folder / "mpm_lang_sw" / "phrases.py").read_text()
    again = CliRunner().invoke(cli, ["lang", "new", "sw", "--out", str(folder)])
    assert again.exit_code != 0 and "not empty" in again.output  # nothing is overwritten by accident
    unknown = CliRunner().invoke(cli, ["lang", "new", "xx"])
    assert unknown.exit_code != 0 and "lingua knows no language 'xx'" in unknown.output


@pytest.mark.slow
def test_new_pack_installs_passes_its_tests_and_the_check_once_translated(tmp_path):
    folder = write_pack("sw", tmp_path / "mpm-lang-sw")
    install = _run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(folder))
    assert install.returncode == 0, install.stderr
    try:
        listed = json.loads(_mpm("plugins", "list", "--json").stdout)
        assert {"kind": "language", "name": "sw", "aliases": ["swahili", "kiswahili"]} in [
            c for p in listed["plugins"] for c in p["components"]]
        # the scaffold passes its own tests at once (the publish test is an expected failure while English)
        own = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", "-rxX", str(folder / "tests"), cwd=folder)
        assert own.returncode == 0 and "1 passed, 1 xfailed" in own.stdout, own.stdout + own.stderr
        # still English: mpm lang check fails and lists the phrases
        check = _mpm("lang", "check", "sw")
        assert check.returncode == 1, check.stdout + check.stderr
        assert "[FAIL] phrases: 15 of 15 phrases and prompts are untranslated" in check.stdout
        assert "phrase 'chat_goodbye': 'Goodbye!'" in check.stdout
        assert "[skip] toy grammar: no toy grammar" in check.stdout
        # a speaker fills in the Swahili (the same files, regenerated with the texts)
        write_pack("sw", folder, texts=_swahili(), force=True)
        check = _mpm("lang", "check", "sw")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "64 pairs, 100% of the responses identified as Swahili" in check.stdout
        assert check.stdout.rstrip().endswith("ready to publish")
        own = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests"), cwd=folder)
        assert own.returncode == 0 and "2 passed" in own.stdout, own.stdout + own.stderr
    finally:
        uninstall = _run("-m", "pip", "uninstall", "-y", "-q", "mpm-lang-sw")
    assert uninstall.returncode == 0, uninstall.stderr
    assert "sw " not in _mpm("lang", "list").stdout


def _tiny_mt_checkpoint(path: Path) -> Path:
    """A tiny random Marian MT model with a word-level tokenizer, saved with save_pretrained."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    words = "picha mtu meza rangi kubwa ndogo nyekundu kijani buluu njano kwenye na ni kuna".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(path)
    config = MarianConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=0, eos_token_id=1,
                          decoder_start_token_id=0, forced_eos_token_id=None)
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(path)
    return path


@pytest.mark.slow
def test_translate_with_a_local_mt_checkpoint_marks_every_entry_for_review(tmp_path):
    mt = _tiny_mt_checkpoint(tmp_path / "mt")
    out = tmp_path / "mpm-lang-sw"
    result = CliRunner().invoke(cli, ["lang", "new", "sw", "--out", str(out), "--translate-with", str(mt),
                                      "--max-new-tokens", "6"])
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location("mpm_test_sw_phrases", out / "mpm_lang_sw" / "phrases.py")
    phrases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(phrases)
    spec = importlib.util.spec_from_file_location("mpm_test_sw_calibration", out / "mpm_lang_sw" / "calibration.py")
    calibration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(calibration)
    english = english_texts(identity_for("sw"))
    vocabulary = set("picha mtu meza rangi kubwa ndogo nyekundu kijani buluu njano kwenye na ni kuna".split())
    drafted = 0
    for key, text in phrases.PHRASES.items():
        mark = phrases.REVIEW.get(key)
        if mark == "machine-translated":  # the model's words, placeholders intact
            drafted += 1
            assert set(text.split()) <= vocabulary | {"{path}", "{image}"}
        else:  # kept in English (the model dropped a placeholder, or gave nothing): still to translate
            assert mark == "untranslated" and text == english.phrases[key]
    assert phrases.REVIEW["paint_saved"] == "untranslated"  # a random model does not write "{path}"
    assert drafted >= 5
    assert [p[:2] for p in calibration.PAIRS] == [p[:2] for p in english.pairs]  # the English side is untouched
    assert all(calibration.REVIEW[f"calibration {i + 1}"] == "machine-translated"
               for i, p in enumerate(calibration.PAIRS) if p[2:] != p[:2])
    assert "machine-translated (review them)" in result.output


EXAMPLE = HERE.parents[1] / "examples" / "mpm-lang-minimal"


def test_the_minimal_example_is_the_scaffold_filled_in(tmp_path, monkeypatch):
    """examples/mpm-lang-minimal is what `mpm lang new sw` writes plus the Swahili texts, file for file
    (its README aside), and it passes the conformance check without a toy grammar."""
    folder = write_pack("sw", tmp_path / "mpm-lang-minimal", texts=_swahili())
    written = {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}
    shipped = {p.relative_to(EXAMPLE) for p in EXAMPLE.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)}
    assert shipped == written
    for rel in sorted(written - {Path("README.md")}):
        assert (EXAMPLE / rel).read_text(encoding="utf-8") == (folder / rel).read_text(encoding="utf-8"), rel

    from mpm_framework.testing import check_language_pack
    from mpm_framework.text.toy_grammars import toy_grammar

    monkeypatch.syspath_prepend(str(EXAMPLE))
    try:
        pack = importlib.import_module("mpm_lang_sw.pack").SwahiliPack()
        assert pack.review == {} and toy_grammar(pack) is None
        report = check_language_pack(pack)
        assert [f.status for f in report.findings if f.check == "toy grammar"] == ["skip"]
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "mpm_lang_sw"]:
            del sys.modules[name]
