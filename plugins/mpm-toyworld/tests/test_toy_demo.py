"""``mpm demo`` end to end: every stage through the real plugins (llama pivot
trained from scratch, CLIP tower, trainer, decoding loop), results written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mpm_toyworld.integrity import check_run

from mpm_framework.cli.main import cli
from mpm_framework.contracts.language import PHRASE_KEYS, LanguagePack
from mpm_framework.hookspecs import hookimpl

TINY = ["pretrain_steps=4", "align_steps=3", "instruct_steps=3", "corpus_documents=120", "align_samples=64",
        "instruct_samples=64", "eval_scenes=3", "probe_scenes=2", "pretrain_batch=8", "align_batch=8",
        "instruct_batch=8", "max_new_tokens=8", "export_records=16"]
ROOT = Path(__file__).resolve().parents[3]  # the repository


@pytest.mark.parametrize("args, message", [
    (["--profile", "quik"], "Did you mean 'quick'"),
    (["--langs", "xx"], "unknown language 'xx'"),
    (["--conditions", "mpm,nativ"], "Did you mean 'native'"),
    (["pretrain_step=3"], "Did you mean 'pretrain_steps'"),
    (["--workers", "0"], "at least 1"),
])
def test_cli_user_errors_are_one_line(args, message, tmp_path, packs):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output


class GrammarlessPack(LanguagePack):
    code, name, native_name, script, lingua_name = "swh", "Swahili", "Kiswahili", "Latn", "SWAHILI"
    caption_prompts = ("Eleza picha hii.",)
    phrases = {k: ("{path}" if k == "paint_saved" else "{image}" if k == "chat_welcome" else "Kiswahili")
               for k in PHRASE_KEYS}

    def calibration(self):
        return []


class Grammar:
    def __init__(self, pack):
        self.pack = pack

    def realise_caption(self, scene, rng):
        return " na ".join(o.shape for o in scene.objects)

    def realise_question(self, question, rng):
        return "?"

    def realise_answer(self, question, rng):
        return question.answer

    def parse_caption(self, text):
        return []

    def parse_answer(self, text, kind):
        return text


class _Swahili:
    @hookimpl
    def mpm_register_languages(self, register):
        register("swh", f"{__name__}:GrammarlessPack")


class _SwahiliGrammar:
    @hookimpl
    def mpm_register_toy_grammars(self, register):
        register("swh", f"{__name__}:Grammar")


def test_a_language_without_toy_grammar_is_refused_clearly(tmp_path, packs, mpm_plugin):
    mpm_plugin(_Swahili(), name="mpm-test-sw")
    result = CliRunner().invoke(cli, ["demo", "--langs", "swh", "--out", str(tmp_path / "run"), *TINY])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "'swh' (Swahili) has no toy grammar" in result.output, result.output
    # the default language list leaves it out, and says so
    from mpm_toyworld.packs import installed_targets, load_packs

    usable, skipped = installed_targets()
    assert "swh" in skipped and "swh" not in usable and "de" in usable
    # a grammar registered by another plugin makes it usable: grammar methods from the grammar,
    # everything else from the pack
    mpm_plugin(_SwahiliGrammar(), name="mpm-test-sw-grammar")
    sw = load_packs(["swh"])["swh"]
    assert isinstance(sw.grammar, Grammar) and sw.phrases is GrammarlessPack.phrases
    assert sw.realise_answer(type("Q", (), {"answer": "2"})(), None) == "2"


def test_demo_pipeline_integrity_at_tiny_scale(tmp_path, packs, monkeypatch):
    """Every stage and every condition, one target language, a handful of steps."""
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["demo", "--langs", "de", "--out", str(out), "--workers", "1",
                                      "--threads", "1", "--quiet", *TINY])
    assert result.exit_code == 0, result.output
    assert check_run(out) == []
    summary = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert summary["langs"] == ["en", "de"]
    assert set(summary["table"]) == {"mpm", "mpm-cal0", "no-pivot", "native"}
    assert set(summary["probe"]) == {"mpm", "no-pivot"}
    seed = out / "seed0"
    # both pivots start from the same saved initialisation, and differ in their data only
    mpm = json.loads((seed / "pivots" / "mpm" / "summary.json").read_text())
    nopivot = json.loads((seed / "pivots" / "no-pivot" / "summary.json").read_text())
    assert mpm["corpus"]["parallel"] > 0 and nopivot["corpus"]["parallel"] == 0
    assert mpm["corpus"]["documents"] == nopivot["corpus"]["documents"]
    # mpm and mpm-cal0 share one alignment; instruct starts from it
    assert sorted(p.name for p in (seed / "align").iterdir()) == ["mpm-en", "mpm-native", "no-pivot-en"]
    instruct_cfg = (seed / "conditions" / "mpm-cal0" / "instruct" / "config.yaml").read_text()
    assert "align/mpm-en/align" in instruct_cfg
    rows = [json.loads(line) for line in
            (seed / "conditions" / "mpm" / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert {r["lang"] for r in rows} == {"en", "de"}
    assert "pretrain_steps=4" in (out / "results.md").read_text(encoding="utf-8")

    # --resume keeps finished jobs: only the condition whose record is gone runs again
    (seed / "jobs" / "instruct-native.json").unlink()
    before = (seed / "conditions" / "mpm" / "eval" / "predictions.jsonl").stat().st_mtime_ns
    again = CliRunner().invoke(cli, ["demo", "--langs", "de", "--out", str(out), "--workers", "1",
                                     "--threads", "1", "--quiet", "--resume", *TINY])
    assert again.exit_code == 0, again.output
    assert "resume: 8 of 9 jobs already done" in again.output
    assert (seed / "conditions" / "mpm" / "eval" / "predictions.jsonl").stat().st_mtime_ns == before
    assert (seed / "jobs" / "instruct-native.json").is_file() and check_run(out) == []
    other = CliRunner().invoke(cli, ["demo", "--langs", "fr", "--out", str(out), "--resume", *TINY])
    assert other.exit_code != 0 and "other langs settings" in other.output

    # the exported data and pivot train with `mpm compose` and the shipped toy recipe
    rows = (out / "data" / "align_en.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 16 and (out / "data" / json.loads(rows[0])["image"]).is_file()
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    (work / "runs" / "demo").symlink_to(out)
    monkeypatch.chdir(work)
    recipe = ROOT / "examples" / "recipes" / "toy.yaml"
    trained = CliRunner().invoke(cli, ["compose", "--lang", "de", "--config", str(recipe), "run.max_steps=2",
                                       "run.batch_size=4", "train", "--stage", "align,instruct",
                                       "--no-progress"])
    assert trained.exit_code == 0, trained.output
    assert (work / "runs" / "toy-compose" / "instruct" / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_quick_profile_end_to_end(tmp_path, packs):
    """The CI run of the main job: ``mpm demo`` (quick profile, zh/de/fr).
    Asserts the pipeline's integrity, not the scientific targets."""
    out = tmp_path / "demo"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "mpm_framework.cli.main", "demo", "--langs", "zh,de,fr",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, env=env,
                          timeout=1800, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert check_run(out) == []
    summary = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert summary["langs"] == ["en", "zh", "de", "fr"] and summary["profile"] == "quick"
    # the console: the headline with CIs and significance, then where the report is; the tables
    # of each stage stay in the job logs
    assert "### Headline: mpm vs no-pivot vs native" in proc.stdout and "trainable set" not in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith(f"report: {out / 'results.md'}")
    assert len(summary["headline"]) == 6 and "Caption attribute F1" in (out / "results.md").read_text()
