"""The English pack: grammar points and the API the core relies on."""

import random
import re

from mpm_framework.contracts.language import CalibrationPair
from mpm_framework.lang_en.pack import EnglishPack
from mpm_framework.toyworld.scene import Obj, Question, Scene, questions_for, sample_scene

PACK = EnglishPack()


def test_api_kept():
    assert (PACK.code, PACK.name, PACK.native_name, PACK.script, PACK.lingua_name) == (
        "en", "English", "English", "Latn", "ENGLISH")
    assert PACK.phrases["user"] == "User" and PACK.phrases["assistant"] == "Assistant"
    assert PACK.phrases["paint_prompt"] == "Paint: "
    pair = PACK.calibration()[0]
    assert isinstance(pair, CalibrationPair) and pair.instruction == pair.instruction_en


def test_adjective_order_and_number_agreement():
    rng = random.Random(0)
    one = Scene((Obj("red", "circle", "small", "left"),))
    two = Scene((*one.objects, Obj("blue", "square", "large", "top")))
    t = PACK.caption_templates.index("count-first")
    assert PACK.realise_caption(one, rng, template=t).startswith("There is one shape: a ")
    assert PACK.realise_caption(two, rng, template=t).startswith("There are two shapes: a ")
    answers = {PACK.realise_answer(Question("count", None, "1"), rng) for _ in range(50)}
    assert answers == {"One.", "1.", "There is one shape."}
    texts = [PACK.realise_caption(sample_scene(rng, 3), rng) for _ in range(2000)]
    # size always before colour ("a small red circle", never "a red small circle")
    assert not any(re.search(r"\b(red|green|blue|yellow) (small|little|large|big)\b", t) for t in texts)
    assert not any(re.search(r"\bthere are one\b|\bthere is (two|three)\b", t, re.I) for t in texts)
    assert not any(re.search(r"\ban (small|little|large|big|red|green|blue|yellow)\b", t) for t in texts)


def test_three_objects_are_listed_with_commas_and_and():
    rng = random.Random(3)
    scene = Scene((Obj("red", "circle", "small", "left"), Obj("blue", "square", "large", "top"),
                   Obj("green", "triangle", "small", "right")))
    caption = PACK.realise_caption(scene, rng, template=PACK.caption_templates.index("image-shows"))
    assert re.fullmatch(r"The image shows a \w+ red circle [a-z ]+, a \w+ blue square [a-z ]+ and "
                        r"a \w+ green triangle [a-z ]+\.", caption)
    assert len(questions_for(scene)) == 10
