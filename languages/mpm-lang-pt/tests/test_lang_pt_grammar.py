"""Portuguese toy-world grammar: the agreement cases one by one, round trips, language ID."""

import random
import re

import pytest
from mpm_lang_pt import grammar as g
from mpm_lang_pt.pack import PortuguesePack

from mpm_framework.lang_en.pack import EnglishPack
from mpm_framework.langkit.check import toy_round_trip
from mpm_framework.testing import check_language_pack
from mpm_framework.text import langid
from mpm_framework.text.phrases import missing_phrases
from mpm_framework.toyworld.scene import Obj, ObjectSpec, Question, Scene

PACK = PortuguesePack()


@pytest.mark.parametrize(("color", "shape", "size", "expected"), [
    # noun, colour, size; masculine singular
    ("red", "circle", "small", "um círculo vermelho pequeno"),
    ("yellow", "square", "large", "um quadrado amarelo grande"),
    ("blue", "triangle", "small", "um triângulo azul pequeno"),  # azul: one singular form
])
def test_masculine_noun_phrases(color, shape, size, expected):
    assert g.noun_phrase(color, shape, size) == expected


@pytest.mark.parametrize(("color", "size", "expected"), [
    ("red", "small", "uma figura vermelha pequena em forma de círculo"),  # feminine -a
    ("yellow", "large", "uma figura amarela grande em forma de círculo"),  # grande: one singular form
    ("green", "small", "uma figura verde pequena em forma de círculo"),  # verde: one singular form
])
def test_feminine_agreement(color, size, expected):
    assert g.figure_phrase(color, "circle", size) == expected


def test_numbers_agree_with_the_counted_noun():
    assert [g.count_noun(n) for n in (1, 2, 3)] == ["uma única figura", "duas figuras", "três figuras"]
    assert [g.count_noun(n, "objeto") for n in (1, 2, 3)] == ["um único objeto", "dois objetos", "três objetos"]
    assert g.of_the("square") == "do quadrado"  # de + o


def _caption(template: str, *objs: Obj) -> str:
    return PACK.realise_caption(Scene(objs), random.Random(0), template=PACK.caption_templates.index(template))


CIRCLE = Obj("red", "circle", "small", "left")
TRIANGLE = Obj("blue", "triangle", "large", "top")


def test_captions_count_in_the_right_gender():
    assert _caption("count-first", CIRCLE).startswith("Há uma única figura: um círculo vermelho pequeno ")
    assert _caption("count-first", CIRCLE, TRIANGLE).startswith("Há duas figuras: ")
    assert _caption("objetos", CIRCLE).startswith("A imagem contém um único objeto: ")
    assert _caption("objetos", CIRCLE, TRIANGLE).startswith("A imagem contém dois objetos: ")
    assert re.fullmatch(r"(À esquerda|Do lado esquerdo) há um círculo vermelho pequeno; "
                        r"(em cima|na parte superior) há um triângulo azul grande\.",
                        _caption("position-first", CIRCLE, TRIANGLE))


def test_ser_for_properties_estar_for_places():
    rng = random.Random(0)
    colours = {PACK.realise_answer(Question("color", CIRCLE, "red"), rng) for _ in range(80)}
    places = {PACK.realise_answer(Question("position", CIRCLE, "left"), rng) for _ in range(120)}
    counts = {PACK.realise_answer(Question("count", None, "2"), rng) for _ in range(80)}
    assert colours == {"Vermelho.", "É vermelho.", "O círculo é vermelho.", "É uma figura vermelha."}
    assert {"Está à esquerda.", "O círculo está do lado esquerdo.", "Fica à esquerda."} <= places
    assert counts == {"Duas.", "2.", "Há duas figuras.", "Há dois objetos."}


BAD = [  # errors that must never appear, each with an example of what it catches
    (r"\bfigura (vermelho|amarelo)\b|\bfigura \w+ pequeno\b", "uma figura vermelho pequeno"),  # feminine
    (r"\b(círculo|quadrado|triângulo) (vermelha|amarela)\b|\b(círculo|quadrado|triângulo) \w+ pequena\b",
     "um círculo vermelha"),  # masculine
    (r"\bum figura\b|\buma (círculo|quadrado|triângulo|objeto)\b", "uma círculo"),  # article gender
    (r"\bdois figuras\b|\bduas objetos\b|\b(única objeto|único figura)\b", "dois figuras"),  # number gender
    (r"\blado esquerda\b|\blado direita\b|\bà esquerdo\b", "do lado esquerda"),  # place agreement
    (r"\bde o\b|\bem a\b|\ba a\b", "a cor de o círculo"),  # contraction
]


def test_the_error_patterns_catch_the_errors():
    for pattern, wrong in BAD:
        assert re.search(pattern, wrong), pattern


def test_no_agreement_error_and_exact_round_trips_on_2000_scenes():
    texts, failures, _ = toy_round_trip(PACK, 2000, seed=11)
    assert failures == []
    for pattern, _ in BAD:
        assert [t for t in texts if re.search(pattern, t)] == [], pattern


def test_parse_reads_plural_and_unaccented_forms():
    assert PACK.parse_caption("duas formas verdes pequenas: um quadrado no alto e um circulo embaixo") == [
        ObjectSpec("green", "square", "small", "top"), ObjectSpec(None, "circle", None, "bottom")]
    assert PACK.parse_answer("Há um único objeto.", "count") == "1"
    assert PACK.parse_answer("Do lado direito.", "position") == "right"


def test_identity_phrases_and_calibration_language():
    assert (PACK.code, PACK.script, PACK.lingua_name) == ("pt", "Latn", "PORTUGUESE")
    assert missing_phrases(PACK.phrases) == []
    pairs = PACK.calibration()
    assert len(pairs) >= 60
    assert [langid.identify(p.response, [PACK, EnglishPack()]) for p in pairs] == ["pt"] * len(pairs)
    assert langid.identify("É vermelho.", [PACK, EnglishPack()]) == "pt"


def test_the_shared_conformance_check():
    """What `mpm lang check pt` requires before publishing (contract, phrases, calibration,
    offline tokenisation, toy-grammar round trips and language ID)."""
    check_language_pack(PACK)
