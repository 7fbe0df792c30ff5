"""German toy-world grammar: the agreement cases, listed one by one."""

import random
import re

import pytest
from mpm_lang_de import grammar as g
from mpm_lang_de.pack import GermanPack

from mpm_framework.testing import check_language_pack
from mpm_framework.toyworld.scene import Obj, ObjectSpec, Question, Scene, questions_for, sample_scene

PACK = GermanPack()


@pytest.mark.parametrize(("color", "shape", "size", "case", "article", "expected"), [
    # nominative, indefinite (mixed declension): -er masculine, -es neuter
    ("red", "circle", "small", "nom", "indef", "ein kleiner roter Kreis"),
    ("blue", "triangle", "large", "nom", "indef", "ein großes blaues Dreieck"),
    ("green", "square", "small", "nom", "indef", "ein kleines grünes Quadrat"),
    # accusative, indefinite: einen ... -en masculine; neuter unchanged
    ("yellow", "circle", "large", "acc", "indef", "einen großen gelben Kreis"),
    ("red", "square", "large", "acc", "indef", "ein großes rotes Quadrat"),
    # dative, indefinite (after "mit"): einem ... -en for both genders
    ("green", "circle", "small", "dat", "indef", "einem kleinen grünen Kreis"),
    ("blue", "triangle", "small", "dat", "indef", "einem kleinen blauen Dreieck"),
    # definite article (weak declension): -e in the nominative, -en in the oblique masculine
    ("red", "circle", "small", "nom", "def", "der kleine rote Kreis"),
    ("red", "triangle", "small", "nom", "def", "das kleine rote Dreieck"),
    ("red", "circle", "small", "acc", "def", "den kleinen roten Kreis"),
    ("red", "square", "large", "acc", "def", "das große rote Quadrat"),
    ("yellow", "triangle", "large", "dat", "def", "dem großen gelben Dreieck"),
])
def test_adjective_declension(color, shape, size, case, article, expected):
    assert g.noun_phrase(color, shape, size, case, article) == expected


def test_counted_noun_number_and_genitive_forms():
    assert [g.count_noun(n) for n in (1, 2, 3)] == ["eine Form", "zwei Formen", "drei Formen"]
    assert [g.GENITIVE[s] for s in ("circle", "square", "triangle")] == ["Kreises", "Quadrats", "Dreiecks"]
    with pytest.raises(ValueError, match="case must be one of"):
        g.noun_phrase("red", "circle", "small", case="gen")


def _caption(template: str, *objs: Obj) -> str:
    return PACK.realise_caption(Scene(objs), random.Random(0), template=PACK.caption_templates.index(template))


CIRCLE = Obj("red", "circle", "small", "left")
TRIANGLE = Obj("blue", "triangle", "large", "top")


def test_captions_use_the_case_their_frame_governs():
    assert _caption("es-gibt", CIRCLE, TRIANGLE).startswith("Es gibt einen kleinen roten Kreis ")
    assert " und ein großes blaues Dreieck " in _caption("es-gibt", CIRCLE, TRIANGLE)
    assert _caption("bild-mit", CIRCLE, TRIANGLE).startswith("Ein Bild mit einem kleinen roten Kreis ")
    assert " und einem großen blauen Dreieck " in _caption("bild-mit", CIRCLE, TRIANGLE)
    # adverbial first, verb second, nominative subject
    assert re.fullmatch(r"(Links|Auf der linken Seite) ist ein kleiner roter Kreis und "
                        r"(oben|im oberen Bereich) ist ein großes blaues Dreieck\.",
                        _caption("position-first", CIRCLE, TRIANGLE))


def test_number_agreement_of_verb_and_noun_in_counts():
    assert _caption("count-first", CIRCLE).startswith("Auf dem Bild ist eine Form: ")
    assert _caption("count-first", CIRCLE, TRIANGLE).startswith("Auf dem Bild sind zwei Formen: ")
    answers = {PACK.realise_answer(Question("count", None, "1"), random.Random(s)) for s in range(60)}
    assert answers == {"Eine.", "1.", "Es gibt eine Form.", "Auf dem Bild ist eine Form."}


def test_pronouns_and_articles_agree_with_the_shape():
    rng = random.Random(0)
    circle = {PACK.realise_answer(Question("color", CIRCLE, "red"), rng) for _ in range(60)}
    triangle = {PACK.realise_answer(Question("color", TRIANGLE, "blue"), rng) for _ in range(60)}
    assert circle == {"Rot.", "Er ist rot.", "Der Kreis ist rot."}
    assert triangle == {"Blau.", "Es ist blau.", "Das Dreieck ist blau."}
    questions = {PACK.realise_question(Question("color", TRIANGLE, "blue"), rng) for _ in range(60)}
    assert questions == {"Welche Farbe hat das Dreieck?", "Wie ist die Farbe des Dreiecks?",
                         "Welche Farbe hat das Dreieck auf dem Bild?"}


BAD = [  # agreement errors that must never appear, each with an example of the error it catches
    (r"\bein \w+er \w+er (Dreieck|Quadrat)\b", "ein kleiner roter Dreieck"),  # masculine ending, neuter noun
    (r"\bein \w+es \w+es Kreis\b", "ein kleines rotes Kreis"),  # neuter ending, masculine noun
    (r"\beinen \w+ \w+ (Dreieck|Quadrat)\b", "einen kleinen roten Quadrat"),  # masculine article, neuter noun
    (r"\b(gibt|zeigt|sehe) ein \w+ \w+ Kreis\b", "Es gibt ein kleiner roter Kreis"),  # nominative for accusative
    (r"\bmit (ein|einen|eine) ", "Ein Bild mit ein kleines Quadrat"),  # dative after "mit"
    (r"\bmit einem \w+e \w+", "mit einem kleine rote Kreis"),  # dative adjective ending -en
    (r"\b(der|den) (Dreieck|Quadrat)\b|\bdas Kreis\b", "Welche Farbe hat der Dreieck?"),  # article gender
    (r"\b(zwei|drei) Form\b|\beine Formen\b", "zwei Form"),  # noun number
    (r"\bsind eine Form\b|\bist (zwei|drei) Formen\b", "Auf dem Bild ist zwei Formen"),  # verb number
    (r"\bdes (Kreis|Dreieck|Quadrat)\b", "die Farbe des Kreis?"),  # genitive -s/-es
]


def test_the_error_patterns_catch_the_errors():
    for pattern, wrong in BAD:
        assert re.search(pattern, wrong), pattern


def test_no_agreement_error_in_thousands_of_realisations():
    rng = random.Random(11)
    texts = []
    for _ in range(1500):
        scene = sample_scene(rng, max_objects=3)
        texts += [PACK.realise_caption(scene, rng, template=t) for t in range(len(PACK.caption_templates))]
        texts += [x for q in questions_for(scene) for x in (PACK.realise_question(q, rng), PACK.realise_answer(q, rng))]
    for pattern, _ in BAD:
        assert [t for t in texts if re.search(pattern, t)] == [], pattern


def test_pronoun_answers_match_gender_everywhere():
    rng = random.Random(12)
    for _ in range(500):
        scene = sample_scene(rng, max_objects=3)
        for q in questions_for(scene):
            answer = PACK.realise_answer(q, rng)
            if answer.startswith(("Er ist", "Es ist")) and q.kind in ("color", "position"):
                expected = "Er" if q.target.shape == "circle" else "Es"
                assert answer.startswith(expected), (q, answer)


def test_parse_reads_inflected_and_ascii_forms():
    assert PACK.parse_caption("ein grosser gruener Kreis rechts und ein kleines gelbes Quadrat unten") == [
        ObjectSpec("green", "circle", "large", "right"), ObjectSpec("yellow", "square", "small", "bottom")]
    assert PACK.parse_answer("Es gibt zwei Formen.", "count") == "2"
    assert PACK.parse_answer("Eine.", "count") == "1"
    assert PACK.parse_answer("Auf der rechten Seite.", "position") == "right"


def test_the_shared_conformance_check():
    """What `mpm lang check de` requires before publishing (contract, phrases, calibration,
    offline tokenisation, toy-grammar round trips and language ID)."""
    check_language_pack(PACK)
