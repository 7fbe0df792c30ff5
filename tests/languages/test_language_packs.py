"""Every pack (English, the three shipped packs, the example) against the contract."""

from __future__ import annotations

import random
import re
import string

import pytest

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.lang_en.calibration import PAIRS as EN_PAIRS
from mpm_framework.text import langid, stanza_route
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.text.phrases import missing_phrases
from mpm_framework.toyworld.scene import QUESTION_KINDS, ObjectSpec, caption_f1, questions_for, sample_scene

ROUND_TRIP_SCENES = 2000


def _scenes(seed: int, n: int):
    rng = random.Random(seed)
    return [sample_scene(rng, max_objects=3) for _ in range(n)], rng


def test_identity(pack):
    assert isinstance(pack, LanguagePack) and isinstance(pack, BaseLanguagePack)
    assert re.fullmatch(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2})?", pack.code)
    assert pack.name and pack.native_name and pack.name.isascii()
    assert re.fullmatch(r"[A-Z][a-z]{3}", pack.script)  # ISO 15924
    assert langid.lingua_known(pack.lingua_name)
    assert pack.describe().startswith(pack.code)


def test_prompts_and_phrases(pack):
    assert len(set(pack.caption_prompts)) >= 4
    assert len(set(pack.instruction_templates)) >= 3
    for template in pack.instruction_templates:
        assert [f for _, f, _, _ in string.Formatter().parse(template) if f] == ["question"]
    assert missing_phrases(pack.phrases) == []
    assert pack.phrases["paint_saved"].format(path="/tmp/x.png").count("/tmp/x.png") == 1
    if pack.code != "en":  # the prompts are in the language, not English
        english = langid.resolve([pack, langid.resolve(["en"])[0]])
        for prompt in pack.caption_prompts:
            assert langid.identify(prompt, english) == pack.code, prompt


def test_calibration_set(pack):
    pairs = pack.calibration()
    assert len(pairs) >= 60
    assert len({p.instruction for p in pairs}) == len(pairs)
    assert all(p.instruction.strip() and p.response.strip() for p in pairs)
    # the English side is the core's originals, in order, in every pack
    assert [(p.instruction_en, p.response_en) for p in pairs] == EN_PAIRS
    if pack.code != "en":
        assert all(p.instruction != p.instruction_en and p.response != p.response_en for p in pairs)


def test_caption_round_trip_every_template(pack):
    """Acceptance: realise -> parse recovers every object of thousands of random scenes, exactly."""
    scenes, rng = _scenes(1, ROUND_TRIP_SCENES)
    assert len(pack.caption_templates) >= 5
    failures = []
    for scene in scenes:
        gold = [ObjectSpec(o.color, o.shape, o.size, o.position) for o in scene.objects]
        for t in range(len(pack.caption_templates)):
            caption = pack.realise_caption(scene, rng, template=t)
            if pack.parse_caption(caption) != gold or caption_f1(pack.parse_caption(caption), scene) != 1.0:
                failures.append(caption)
    assert failures == []


def test_answer_round_trip(pack):
    scenes, rng = _scenes(2, ROUND_TRIP_SCENES)
    kinds, failures = set(), []
    for scene in scenes:
        for q in questions_for(scene):
            kinds.add(q.kind)
            answer = pack.realise_answer(q, rng)
            if pack.parse_answer(answer, q.kind) != q.answer:
                failures.append((q, answer))
    assert kinds == set(QUESTION_KINDS) and failures == []


def test_questions_name_their_target(pack):
    """A question mentions the shape it asks about (colour, position) or the place (shape)."""
    scenes, rng = _scenes(3, 300)
    for scene in scenes:
        for q in questions_for(scene):
            text = pack.realise_question(q, rng)
            mentions = {(m.attr, m.value) for m in pack.lexicon.scan(text)}
            if q.kind in ("color", "position"):
                assert ("shape", q.target.shape) in mentions, text
            elif q.kind == "shape":
                assert ("position", q.target.position) in mentions, text
            assert text.rstrip().endswith(("?", "？")), text


def test_realisations_vary(pack):
    """Several templates per text, so a model cannot win by memorising one sentence."""
    scenes, rng = _scenes(4, 1)
    scene = scenes[0]
    captions = {pack.realise_caption(scene, rng) for _ in range(200)}
    assert len(captions) >= 5
    for q in questions_for(scene):
        assert len({pack.realise_question(q, rng) for _ in range(100)}) >= 2
        assert len({pack.realise_answer(q, rng) for _ in range(100)}) >= 3


def test_the_pack_owns_every_word_it_writes(pack):
    """The vocabulary behind language identification is closed over the pack's own output."""
    scenes, rng = _scenes(5, 500)
    unowned = set()
    for scene in scenes:
        texts = [pack.realise_caption(scene, rng)]
        texts += [x for q in questions_for(scene) for x in (pack.realise_question(q, rng), pack.realise_answer(q, rng))]
        unowned |= {w for t in texts for w in langid.words_of(t) if not pack.owns_word(w)}
    assert unowned == set()


def test_parse_is_lenient_with_generated_text(pack):
    """Generated captions are not the templates: case, spacing and extra words do not matter."""
    scenes, rng = _scenes(6, 200)
    for scene in scenes:
        caption = pack.realise_caption(scene, rng)
        noisy = "  " + caption.upper().replace(" ", "  ") + " " + caption[:0]
        assert caption_f1(pack.parse_caption(noisy), scene) == 1.0


def test_segmentation_route_and_metrics_normalisation(pack):
    assert pack.segmentation_route in stanza_route.ROUTES
    responses = [p.response for p in pack.calibration()]
    batched = pack.segment_words_many(responses)
    assert batched == [pack.segment_words(r) for r in responses]
    assert all(tokens and all(t == t.lower() for t in tokens) for tokens in batched)
    answer = pack.realise_answer(questions_for(_scenes(7, 1)[0][0])[0], random.Random(0))
    assert pack.normalize_answer(answer) == " ".join(pack.segment_words(answer.lower().rstrip(".!?。！？")))


def test_offline_tokens_are_the_documented_split(pack):
    """Offline, the Latin-script packs tokenise exactly by the rule split; Chinese by jieba."""
    tok = stanza_route.get_tokenizer(pack.stanza_code or pack.code, offline=True)
    sentence = pack.calibration()[3].response
    if pack.code == "zh":
        import jieba

        assert tok.route == stanza_route.ROUTE_JIEBA
        assert tok.tokenize(sentence) == [w for w in jieba.cut(sentence) if w.strip()]
    else:
        from mpm_framework.text.rule_split import split

        assert tok.route == stanza_route.ROUTE_PRETOKENIZED
        assert tok.tokenize(sentence) == [w for s in split(sentence, pack.code) for w in s]


def test_unknown_answer_kind_is_an_error(pack):
    with pytest.raises(ValueError, match="unknown answer kind"):
        pack.parse_answer("x", "weight")
