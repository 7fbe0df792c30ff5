"""Spanish toy-world grammar: the agreement cases one by one, round trips, language ID."""

import random
import re

import pytest
from mpm_lang_es import grammar as g
from mpm_lang_es.pack import SpanishPack

from mpm_framework.lang_en.pack import EnglishPack
from mpm_framework.langkit.check import toy_round_trip
from mpm_framework.testing import check_language_pack
from mpm_framework.text import langid
from mpm_framework.text.phrases import missing_phrases
from mpm_framework.toyworld.scene import Obj, Question, Scene

PACK = SpanishPack()


@pytest.mark.parametrize(("color", "shape", "size", "expected"), [
    ("red", "circle", "small", "un círculo rojo pequeño"),  # adjectives after the noun, masculine
    ("yellow", "square", "large", "un cuadrado amarillo grande"),
    ("blue", "triangle", "small", "un triángulo azul pequeño"),  # azul: one form for both genders
])
def test_masculine_agreement(color, shape, size, expected):
    assert g.noun_phrase(color, shape, size) == expected


@pytest.mark.parametrize(("color", "size", "expected"), [
    ("red", "small", "una figura roja pequeña en forma de círculo"),  # feminine -a
    ("yellow", "large", "una figura amarilla grande en forma de círculo"),  # grande: invariable
    ("green", "small", "una figura verde pequeña en forma de círculo"),  # verde: invariable
])
def test_feminine_agreement(color, size, expected):
    assert g.figure_phrase(color, "circle", size) == expected


def test_counts_and_passive_se_agree():
    assert [g.count_noun(n) for n in (1, 2, 3)] == ["una sola figura", "dos figuras", "tres figuras"]
    assert [g.count_noun(n, "objeto") for n in (1, 2)] == ["un solo objeto", "dos objetos"]
    assert [g.one_sees(n) for n in (1, 2)] == ["se ve", "se ven"]


def _caption(template: str, *objs: Obj) -> str:
    return PACK.realise_caption(Scene(objs), random.Random(0), template=PACK.caption_templates.index(template))


CIRCLE = Obj("red", "circle", "small", "left")
TRIANGLE = Obj("blue", "triangle", "large", "top")


def test_captions_agree_in_number_and_gender():
    assert _caption("se-ve", CIRCLE).startswith("Se ve un círculo rojo pequeño ")
    assert _caption("se-ve", CIRCLE, TRIANGLE).startswith("Se ven un círculo rojo pequeño ")
    assert _caption("objetos", CIRCLE).startswith("La imagen contiene un solo objeto: ")
    assert _caption("count-first", CIRCLE, TRIANGLE).startswith("Hay dos figuras: ")


def test_ser_for_properties_estar_for_places_and_feminine_counts():
    rng = random.Random(0)
    colours = {PACK.realise_answer(Question("color", CIRCLE, "red"), rng) for _ in range(80)}
    places = {PACK.realise_answer(Question("position", CIRCLE, "left"), rng) for _ in range(80)}
    counts = {PACK.realise_answer(Question("count", None, "1"), rng) for _ in range(80)}
    assert colours == {"Rojo.", "Es rojo.", "El círculo es rojo.", "Es una figura roja."}
    assert {a for a in places if a.startswith(("Está", "El"))} <= {
        "Está a la izquierda.", "Está en la parte izquierda.",
        "El círculo está a la izquierda.", "El círculo está en la parte izquierda."}
    assert counts == {"Una.", "1.", "Hay una sola figura."}


BAD = [  # errors that must never appear, each with an example of what it catches
    (r"\bfigura (rojo|amarillo)\b|\bfigura \w+ pequeño\b", "una figura rojo pequeño"),  # feminine
    (r"\b(círculo|cuadrado|triángulo) (roja|amarilla)\b|\b(círculo|cuadrado|triángulo) \w+ pequeña\b",
     "un círculo roja"),  # masculine
    (r"\bun figura\b|\buna (círculo|cuadrado|triángulo|objeto)\b", "un figura"),  # article gender
    (r"\buna sola objeto\b|\bun solo figura\b|\b(dos|tres) (figura|objeto)\b", "un solo figura"),  # counts
    (r"(?i)\bse ve\b[^.;:]* y una?\b|^se ven\b(?:(?! y ).)*$", "Se ven un círculo arriba."),  # se ve / se ven
]


def test_the_error_patterns_catch_the_errors():
    for pattern, wrong in BAD:
        assert re.search(pattern, wrong), pattern


def test_no_agreement_error_and_exact_round_trips_on_2000_scenes():
    texts, failures, _ = toy_round_trip(PACK, 2000, seed=11)
    assert failures == []
    for pattern, _ in BAD:
        assert [t for t in texts if re.search(pattern, t)] == [], pattern


def test_identity_phrases_and_calibration_language():
    assert (PACK.code, PACK.script, PACK.lingua_name) == ("es", "Latn", "SPANISH")
    assert missing_phrases(PACK.phrases) == []
    pairs = PACK.calibration()
    assert len(pairs) >= 60
    assert [langid.identify(p.response, [PACK, EnglishPack()]) for p in pairs] == ["es"] * len(pairs)
    assert langid.identify("Es verde.", [PACK, EnglishPack()]) == "es"


def test_the_shared_conformance_check():
    """What `mpm lang check es` requires before publishing (contract, phrases, calibration,
    offline tokenisation, toy-grammar round trips and language ID)."""
    check_language_pack(PACK)
