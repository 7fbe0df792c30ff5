"""French toy-world grammar: adjective position and agreement, case by case."""

import random
import re

import pytest
from mpm_lang_fr import grammar as g
from mpm_lang_fr.pack import FrenchPack

from mpm_framework.testing import check_language_pack
from mpm_framework.toyworld.scene import Obj, ObjectSpec, Question, Scene, questions_for, sample_scene

PACK = FrenchPack()


@pytest.mark.parametrize(("color", "shape", "size", "expected"), [
    # size before the noun, colour after it, masculine singular
    ("red", "circle", "small", "un petit cercle rouge"),
    ("green", "square", "large", "un grand carré vert"),
    ("blue", "triangle", "small", "un petit triangle bleu"),
    ("yellow", "circle", "large", "un grand cercle jaune"),
])
def test_masculine_noun_phrases(color, shape, size, expected):
    assert g.noun_phrase(color, shape, size) == expected


@pytest.mark.parametrize(("color", "size", "expected"), [
    # the feminine "figure": petite/grande, verte/bleue; rouge and jaune do not change
    ("green", "small", "une petite figure verte en forme de cercle"),
    ("blue", "large", "une grande figure bleue en forme de cercle"),
    ("red", "small", "une petite figure rouge en forme de cercle"),
    ("yellow", "large", "une grande figure jaune en forme de cercle"),
])
def test_feminine_agreement(color, size, expected):
    assert g.figure_phrase(color, "circle", size) == expected


def test_number_contraction_and_elision():
    assert [g.count_noun(n) for n in (1, 2, 3)] == ["une seule forme", "deux formes", "trois formes"]
    assert g.of_the("square") == "du carré"  # de + le
    rng = random.Random(0)
    questions = {PACK.realise_question(Question("count", None, "2"), rng) for _ in range(50)}
    assert "Combien de formes voit-on sur l'image ?" in questions  # l'image, never "la image"


def test_colour_answers_agree_with_their_noun():
    rng = random.Random(0)
    target = Obj("green", "square", "small", "top")
    answers = {PACK.realise_answer(Question("color", target, "green"), rng) for _ in range(80)}
    assert answers == {"Vert.", "Il est vert.", "Le carré est vert.", "C'est une forme verte."}


def test_typography_puts_a_space_before_double_punctuation():
    rng = random.Random(1)
    scene = Scene((Obj("red", "circle", "small", "left"), Obj("blue", "triangle", "large", "top")))
    caption = PACK.realise_caption(scene, rng, template=PACK.caption_templates.index("position-first"))
    assert re.fullmatch(r"(À gauche|Sur la gauche), il y a un petit cercle rouge ; "
                        r"(en haut|dans la partie supérieure), il y a un grand triangle bleu\.", caption)
    for q in questions_for(scene):
        assert PACK.realise_question(q, rng).endswith(" ?")


BAD = [  # errors that must never appear, each with an example of what it catches
    (r"\b(cercle|carré|triangle) (petit|grand)e?s?\b", "un cercle petit rouge"),  # size after the noun
    (r"\b(rouge|verte?|bleue?|jaune)s? (cercle|carré|triangle|figure)\b", "un petit rouge cercle"),  # colour before
    (r"\bun (petite|grande|figure)\b|\bune (petit|grand|cercle|carré|triangle)\b", "une petit cercle"),  # gender
    (r"\bfigure (vert|bleu)\b|\b(petit|grand) figure\b", "une petite figure vert"),  # feminine agreement
    (r"\bde le\b|\bla image\b|\bde image\b", "la couleur de le cercle"),  # contraction and elision
    (r"\b(deux|trois) forme\b|\bune formes\b", "deux forme"),  # number
]


def test_the_error_patterns_catch_the_errors():
    for pattern, wrong in BAD:
        assert re.search(pattern, wrong), pattern


def test_no_agreement_or_position_error_in_thousands_of_realisations():
    rng = random.Random(11)
    texts = []
    for _ in range(1500):
        scene = sample_scene(rng, max_objects=3)
        texts += [PACK.realise_caption(scene, rng, template=t) for t in range(len(PACK.caption_templates))]
        texts += [x for q in questions_for(scene) for x in (PACK.realise_question(q, rng), PACK.realise_answer(q, rng))]
    for pattern, _ in BAD:
        assert [t for t in texts if re.search(pattern, t)] == [], pattern


def test_parse_reads_feminine_plural_and_unaccented_forms():
    assert PACK.parse_caption("deux petites formes vertes : un carre en haut et un cercle en bas") == [
        ObjectSpec("green", "square", "small", "top"), ObjectSpec(None, "circle", None, "bottom")]
    assert PACK.parse_answer("Il y a une seule forme.", "count") == "1"
    assert PACK.parse_answer("Dans la partie inférieure.", "position") == "bottom"


def test_the_shared_conformance_check():
    """What `mpm lang check fr` requires before publishing (contract, phrases, calibration,
    offline tokenisation, toy-grammar round trips and language ID)."""
    check_language_pack(PACK)
