"""Italian toy-world grammar: the agreement cases one by one, round trips, language ID."""

import random
import re

import pytest
from mpm_lang_it import grammar as g
from mpm_lang_it.pack import ItalianPack

from mpm_framework.lang_en.pack import EnglishPack
from mpm_framework.langkit.check import toy_round_trip
from mpm_framework.testing import check_language_pack
from mpm_framework.text import langid
from mpm_framework.text.phrases import missing_phrases
from mpm_framework.toyworld.scene import Obj, ObjectSpec, Question, Scene

PACK = ItalianPack()


@pytest.mark.parametrize(("color", "shape", "size", "expected"), [
    # size before the noun, colour after it, masculine singular
    ("red", "circle", "small", "un piccolo cerchio rosso"),
    ("yellow", "square", "large", "un grande quadrato giallo"),
    ("blue", "triangle", "small", "un piccolo triangolo blu"),  # blu: invariable
    ("green", "circle", "large", "un grande cerchio verde"),
])
def test_masculine_noun_phrases(color, shape, size, expected):
    assert g.noun_phrase(color, shape, size) == expected


@pytest.mark.parametrize(("color", "size", "expected"), [
    ("red", "small", "una piccola figura rossa a forma di cerchio"),  # feminine -a
    ("yellow", "large", "una grande figura gialla a forma di cerchio"),  # grande: one singular form
    ("green", "small", "una piccola figura verde a forma di cerchio"),  # verde: one singular form
    ("blue", "large", "una grande figura blu a forma di cerchio"),
])
def test_feminine_agreement(color, size, expected):
    assert g.figure_phrase(color, "circle", size) == expected


def test_number_agreement_of_c_e_si_vede_and_counts():
    assert [g.count_noun(n) for n in (1, 2, 3)] == ["una sola figura", "due figure", "tre figure"]
    assert [g.there_is(n) for n in (1, 2)] == ["c'è", "ci sono"]
    assert [g.one_sees(n) for n in (1, 3)] == ["si vede", "si vedono"]
    assert g.of_the("square") == "del quadrato"  # di + il


def _caption(template: str, *objs: Obj) -> str:
    return PACK.realise_caption(Scene(objs), random.Random(0), template=PACK.caption_templates.index(template))


CIRCLE = Obj("red", "circle", "small", "left")
TRIANGLE = Obj("blue", "triangle", "large", "top")


def test_captions_agree_in_number_with_their_subjects():
    assert _caption("c-e", CIRCLE).startswith("C'è un piccolo cerchio rosso ")
    assert _caption("c-e", CIRCLE, TRIANGLE).startswith("Ci sono un piccolo cerchio rosso ")
    assert _caption("si-vede", CIRCLE).startswith("Si vede un ")
    assert _caption("si-vede", CIRCLE, TRIANGLE).startswith("Si vedono un ")
    assert _caption("count-first", CIRCLE).startswith("C'è una sola figura: ")
    assert _caption("count-first", CIRCLE, TRIANGLE).startswith("Ci sono due figure: ")
    assert re.fullmatch(r"(A sinistra|Sulla sinistra) c'è un piccolo cerchio rosso; "
                        r"(in alto|nella parte superiore) c'è un grande triangolo blu\.",
                        _caption("position-first", CIRCLE, TRIANGLE))


def test_answers_agree_with_their_noun():
    rng = random.Random(0)
    colours = {PACK.realise_answer(Question("color", CIRCLE, "red"), rng) for _ in range(80)}
    counts = {PACK.realise_answer(Question("count", None, "1"), rng) for _ in range(60)}
    assert colours == {"Rosso.", "È rosso.", "Il cerchio è rosso.", "È una figura rossa."}
    assert counts == {"Una.", "1.", "C'è una sola figura."}
    questions = {PACK.realise_question(Question("color", TRIANGLE, "blue"), rng) for _ in range(60)}
    assert questions == {"Di che colore è il triangolo?", "Qual è il colore del triangolo?",
                         "Il triangolo di che colore è?"}


BAD = [  # errors that must never appear, each with an example of what it catches
    (r"\b(cerchio|quadrato|triangolo) (piccol|grand)[oaie]\b", "un cerchio piccolo rosso"),  # size after the noun
    (r"\b(ross|giall)[oaie] (cerchio|quadrato|triangolo|figura)\b", "un piccolo rosso cerchio"),  # colour before
    (r"\bun (piccola|figura)\b|\buna (piccolo|cerchio|quadrato|triangolo)\b", "una piccolo cerchio"),  # article
    (r"\bfigura (rosso|giallo)\b|\bpiccolo figura\b", "una piccola figura rosso"),  # feminine agreement
    (r"(?i)\bc'è (due|tre)\b|\bci sono una sola\b|\b(c'è|si vede)\b[^.;:]* e una?\b",
     "Si vede un cerchio a sinistra e un quadrato in alto"),  # number of c'è / si vede
    (r"\b(due|tre) figura\b|\buna figure\b", "due figura"),  # noun number
    (r"\bdi il\b|\bin la\b|\bsu la\b|\bla immagine\b|\bdi immagine\b", "il colore di il cerchio"),  # contraction
]


def test_the_error_patterns_catch_the_errors():
    for pattern, wrong in BAD:
        assert re.search(pattern, wrong), pattern


def test_no_agreement_error_and_exact_round_trips_on_2000_scenes():
    texts, failures, _ = toy_round_trip(PACK, 2000, seed=11)
    assert failures == []
    for pattern, _ in BAD:
        assert [t for t in texts if re.search(pattern, t)] == [], pattern


def test_parse_reads_plural_and_other_forms():
    assert PACK.parse_caption("due piccole forme verdi: un quadrato sopra e un cerchio sotto") == [
        ObjectSpec("green", "square", "small", "top"), ObjectSpec(None, "circle", None, "bottom")]
    assert PACK.parse_answer("C'è una sola figura.", "count") == "1"
    assert PACK.parse_answer("Nella parte inferiore.", "position") == "bottom"


def test_identity_phrases_and_calibration_language():
    assert (PACK.code, PACK.script, PACK.lingua_name) == ("it", "Latn", "ITALIAN")
    assert missing_phrases(PACK.phrases) == []
    pairs = PACK.calibration()
    assert len(pairs) >= 60
    assert [langid.identify(p.response, [PACK, EnglishPack()]) for p in pairs] == ["it"] * len(pairs)
    assert langid.identify("È rosso.", [PACK, EnglishPack()]) == "it"


def test_the_shared_conformance_check():
    """What `mpm lang check it` requires before publishing (contract, phrases, calibration,
    offline tokenisation, toy-grammar round trips and language ID)."""
    check_language_pack(PACK)
