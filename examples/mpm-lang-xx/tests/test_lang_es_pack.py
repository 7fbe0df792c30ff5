"""Tests a language pack should have (copy and adapt them): grammar cases,
realise -> parse round trips, language identification, tokenisation.

Run after installing the pack: ``python3 -m pytest examples/mpm-lang-xx/tests``."""

import random
import re

import pytest
from mpm_lang_es import pack as es

from mpm_framework.lang_en.pack import EnglishPack
from mpm_framework.text import langid, stanza_route
from mpm_framework.text.phrases import missing_phrases
from mpm_framework.toyworld.scene import Obj, ObjectSpec, Question, questions_for, sample_scene

PACK = es.SpanishPack()


@pytest.mark.parametrize(("color", "shape", "size", "expected"), [
    ("red", "circle", "small", "un círculo rojo pequeño"),  # adjectives after the noun, masculine
    ("yellow", "square", "large", "un cuadrado amarillo grande"),
    ("blue", "triangle", "small", "un triángulo azul pequeño"),  # azul: one form for both genders
])
def test_masculine_agreement(color, shape, size, expected):
    assert es.noun_phrase(color, shape, size) == expected


@pytest.mark.parametrize(("color", "size", "expected"), [
    ("red", "small", "una figura roja pequeña en forma de círculo"),  # feminine -a
    ("yellow", "large", "una figura amarilla grande en forma de círculo"),  # grande: invariable
    ("green", "small", "una figura verde pequeña en forma de círculo"),  # verde: invariable
])
def test_feminine_agreement(color, size, expected):
    assert es.figure_phrase(color, "circle", size) == expected


def test_ser_for_properties_estar_for_places_and_feminine_counts():
    rng = random.Random(0)
    target = Obj("red", "circle", "small", "left")
    colours = {PACK.realise_answer(Question("color", target, "red"), rng) for _ in range(80)}
    places = {PACK.realise_answer(Question("position", target, "left"), rng) for _ in range(80)}
    counts = {PACK.realise_answer(Question("count", None, "1"), rng) for _ in range(80)}
    assert colours == {"Rojo.", "Es rojo.", "El círculo es rojo.", "Es una figura roja."}
    assert {a for a in places if a.startswith(("Está", "El"))} <= {
        "Está a la izquierda.", "Está en la parte izquierda.",
        "El círculo está a la izquierda.", "El círculo está en la parte izquierda."}
    assert counts == {"Una.", "1.", "Hay una sola figura."}


def test_round_trips_on_thousands_of_scenes():
    rng = random.Random(1)
    for _ in range(2000):
        scene = sample_scene(rng, max_objects=3)
        gold = [ObjectSpec(o.color, o.shape, o.size, o.position) for o in scene.objects]
        for t in range(len(PACK.caption_templates)):
            assert PACK.parse_caption(PACK.realise_caption(scene, rng, template=t)) == gold
        for q in questions_for(scene):
            assert PACK.parse_answer(PACK.realise_answer(q, rng), q.kind) == q.answer


def test_no_agreement_error():
    rng = random.Random(2)
    texts = [PACK.realise_caption(sample_scene(rng, 3), rng) for _ in range(2000)]
    for pattern in (r"\bfigura (rojo|amarillo)\b", r"\bun figura\b", r"\b(círculo|cuadrado|triángulo) (roja|amarilla)\b",
                    r"\bpequeña (círculo|cuadrado|triángulo)\b"):
        assert not any(re.search(pattern, t) for t in texts), pattern


def test_identity_phrases_and_calibration():
    assert (PACK.code, PACK.script, PACK.lingua_name) == ("es", "Latn", "SPANISH")
    assert missing_phrases(PACK.phrases) == []
    pairs = PACK.calibration()
    assert len(pairs) >= 60
    found = [langid.identify(p.response, [PACK, EnglishPack()]) for p in pairs]
    assert found.count("es") / len(found) >= 0.99
    assert langid.identify("Es verde.", [PACK, EnglishPack()]) == "es"


def test_offline_tokenisation():
    tok = stanza_route.get_tokenizer("es", offline=True)
    assert tok.route == stanza_route.ROUTE_PRETOKENIZED
    assert tok.tokenize("¿Qué hay a la izquierda? Un círculo.") == [
        "¿", "Qué", "hay", "a", "la", "izquierda", "?", "Un", "círculo", "."]
