"""The pack contract is what a real model needs; the toy grammar is optional.

A pack with identity, phrases and calibration only installs, loads (checked
against the contract), composes, trains align + instruct, tokenises and
identifies its language; a pack written for the old contract (grammar inline:
an unchanged copy of the Spanish example) keeps its grammar; a grammar can
also come from another plugin's ``mpm_register_toy_grammars``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from PIL import Image

from mpm_framework.composition import compose, load_language
from mpm_framework.contracts.language import (
    PHRASE_KEYS,
    CalibrationPair,
    LanguagePack,
    LanguagePackError,
    validate_language_pack,
)
from mpm_framework.contracts.toy_grammar import NoToyGrammarError, ObjectSpec, ToyGrammar
from mpm_framework.hookspecs import hookimpl
from mpm_framework.text import stanza_route
from mpm_framework.text.toy_grammars import require_toy_grammar, toy_grammar
from mpm_framework.text.toy_scenes import caption_f1, questions_for, sample_scene

LEGACY = Path(__file__).parent / "legacy_es"

SW_PHRASES = {
    "user": "Mtumiaji",
    "assistant": "Msaidizi",
    "system": "Wewe ni msaidizi mwenye msaada. Unatazama picha na kujibu maswali kuzihusu kwa Kiswahili.",
    "image": "Picha",
    "answer_in_language": "Tafadhali jibu kwa Kiswahili.",
    "paint_prompt": "Chora: ",
    "paint_saved": "Picha imehifadhiwa katika {path}.",
    "chat_welcome": "Tunazungumza kuhusu {image}. Uliza swali kuhusu picha hii.",
    "chat_exit_hint": "Andika 'exit' au bonyeza Ctrl-D kuondoka.",
    "chat_goodbye": "Kwaheri!",
}
SW_PAIRS = [
    ("Picha hii inaonyesha nini?", "Inaonyesha duara jekundu upande wa kushoto.",
     "What does this picture show?", "It shows a red circle on the left."),
    ("Kuna maumbo mangapi?", "Kuna maumbo mawili.", "How many shapes are there?", "There are two shapes."),
]


class SwahiliPack(LanguagePack):
    """The minimal pack: identity, prompts, phrases, calibration -- nothing else."""

    # "swh" (Swahili as an individual language): "sw" is what `mpm lang new sw` scaffolds in other tests
    code, name, native_name, script, lingua_name = "swh", "Swahili", "Kiswahili", "Latn", "SWAHILI"
    caption_prompts = ("Eleza picha hii.", "Kuna nini katika picha hii?")
    phrases = SW_PHRASES

    def calibration(self) -> list[CalibrationPair]:
        return [CalibrationPair(*row) for row in SW_PAIRS]


class IncompletePack(SwahiliPack):
    code = "swh-bad"
    phrases = {**{k: v for k, v in SW_PHRASES.items() if k != "chat_goodbye"}, "paint_saved": "Imehifadhiwa."}


class SwahiliGrammar:
    """A grammar registered for a pack by another plugin (one template, enough to test the route)."""

    def __init__(self, pack):
        self.pack = pack

    def realise_caption(self, scene, rng):
        return " na ".join(f"{o.shape} {o.color}" for o in scene.objects) + "."

    def realise_question(self, question, rng):
        return f"{question.kind}?"

    def realise_answer(self, question, rng):
        return f"{question.answer}."

    def parse_caption(self, text):
        return [ObjectSpec(shape=part.split()[0], color=part.split()[1])
                for part in text.rstrip(".").split(" na ") if part]

    def parse_answer(self, text, kind):
        return text.rstrip(".") or None


class _Packs:
    @hookimpl
    def mpm_register_languages(self, register):
        register("swh", f"{__name__}:SwahiliPack", aliases=["swahili-test"])
        register("swh-bad", f"{__name__}:IncompletePack")
        register("es-v01", "mpm_lang_es_legacy.pack:SpanishPack")


class _Grammars:
    @hookimpl
    def mpm_register_toy_grammars(self, register):
        register("swh", f"{__name__}:SwahiliGrammar", aliases=["swahili-test"])


@pytest.fixture
def packs_registered(mpm_plugin, monkeypatch):
    monkeypatch.syspath_prepend(str(LEGACY))
    mpm_plugin(_Packs(), name="mpm-test-contract-packs")
    yield
    for name in [m for m in sys.modules if m.startswith("mpm_lang_es_legacy")]:
        del sys.modules[name]


def test_phrase_keys_are_declared_with_their_meaning():
    assert {"user", "assistant", "system", "answer_in_language", "paint_saved"} <= set(PHRASE_KEYS)
    assert all(isinstance(meaning, str) and meaning for meaning in PHRASE_KEYS.values())


def test_minimal_pack_loads_and_has_no_toy_grammar(packs_registered):
    pack = load_language("swahili-test")
    assert isinstance(pack, SwahiliPack) and not isinstance(pack, ToyGrammar)
    assert toy_grammar(pack) is None
    with pytest.raises(NoToyGrammarError, match="'swh' \\(Swahili\\) has no toy grammar"):
        require_toy_grammar(pack)
    # tokenisation for metrics (the stanza route from the code) and language ID work by default
    assert pack.segment_words("Kuna maumbo mawili.") == ["kuna", "maumbo", "mawili", "."]
    assert pack.segmentation_route in stanza_route.ROUTES
    assert pack.identify("Kuna maumbo mawili katika picha hii.", ["en", pack]) == "swh"


def test_incomplete_pack_is_rejected_with_every_missing_phrase(packs_registered):
    with pytest.raises(LanguagePackError) as err:
        load_language("swh-bad")
    message = str(err.value)
    assert "'swh-bad'" in message and "chat_goodbye" in message and "paint_saved" in message
    assert "{path}" in message  # says which placeholder is missing
    assert "user" not in message.split("incomplete:")[1]  # only what is wrong is listed


def test_validation_names_missing_identity():
    class Nameless(SwahiliPack):
        native_name = ""

    with pytest.raises(LanguagePackError, match="'native_name' is missing"):
        validate_language_pack(Nameless())


def test_pack_written_for_the_old_contract_keeps_its_grammar(packs_registered):
    pack = load_language("es-v01")  # the unchanged Spanish example: grammar methods inline
    assert isinstance(pack, ToyGrammar) and toy_grammar(pack) is pack
    rng = random.Random(3)
    for _ in range(20):
        scene = sample_scene(rng, 2)
        assert caption_f1(pack.parse_caption(pack.realise_caption(scene, rng)), scene) == 1.0
        for q in questions_for(scene):
            assert pack.parse_answer(pack.realise_answer(q, rng), q.kind) == q.answer


def test_grammar_registered_by_hook(packs_registered, mpm_plugin):
    pack = load_language("swh")
    mpm_plugin(_Grammars(), name="mpm-test-sw-grammar")
    grammar = require_toy_grammar(pack)
    assert isinstance(grammar, SwahiliGrammar) and grammar.pack is pack
    scene = sample_scene(random.Random(0), 2)
    assert caption_f1(grammar.parse_caption(grammar.realise_caption(scene, random.Random(0))), scene) > 0.5


def test_grammarless_pack_composes_and_trains_align_then_instruct(packs_registered, tiny_components, tmp_path):
    import torch

    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config
    from mpm_framework.training import train_stage

    for i, color in enumerate(("red", "green", "blue", "yellow")):
        Image.new("RGB", (32, 32), color).save(tmp_path / f"img{i}.png")
    captions = [{"image": str(tmp_path / f"img{i}.png"), "text": f"a {c} square", "lang": "en"}
                for i, c in enumerate(("red", "green", "blue", "yellow"))]
    pack = load_language("swh")
    instruct = [{"image": str(tmp_path / f"img{i % 4}.png"), "lang": "swh", "conversations": [
        {"from": "human", "value": f"<image>\n{p.instruction}"}, {"from": "gpt", "value": p.response}]}
        for i, p in enumerate(pack.calibration() * 2)]
    run = ["run.batch_size=2", "run.lr=5e-3", "run.save_every=0", "run.progress=false", "data.max_length=256"]
    before = None
    for stage, data in (("align", captions), ("instruct", instruct)):
        cfg = resolve_config(llm="tiny-llm", vision="tiny-vision", lang=["swh"], overrides=[
            f"run.stage={stage}", f"run.output_dir={tmp_path / 'run'}", "run.max_steps=2", *run,
            *([f"run.init_from={tmp_path / 'run' / 'align'}"] if stage == "instruct" else [])])
        stack = build_stack(cfg)
        assert "swh" in stack.languages  # English, the pivot, is always there too
        if before is None:
            before = {n: p.detach().clone() for n, p in stack.named_parameters()}
        result = train_stage(stack, cfg, train_samples=data, progress=False)
        assert result.steps == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    changed = {n for n, p in stack.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("connector.") for n in changed)
    assert compose(llm="tiny-llm", vision="tiny-vision", lang="swh").languages["swh"].code == "swh"
