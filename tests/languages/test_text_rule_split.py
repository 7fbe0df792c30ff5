"""The rule-based split that feeds stanza's pretokenized route: every rule of
the module docstring, case by case."""

import pytest

from mpm_framework.text.rule_split import split, split_sentences, split_words


@pytest.mark.parametrize(("text", "code", "expected"), [
    # step 3: numbers keep inner separators, words keep inner hyphens/apostrophes
    ("It costs 3.50 at 12:30, about 1,000 in all.", "de",
     ["It", "costs", "3.50", "at", "12:30", ",", "about", "1,000", "in", "all", "."]),
    ("Das ist peut-être O'Brien!", "de", ["Das", "ist", "peut-être", "O'Brien", "!"]),
    # step 4: French elision and inversion
    ("L'image montre-t-elle un carré ?", "fr", ["L'", "image", "montre", "-t-elle", "un", "carré", "?"]),
    ("Qu'y a-t-il à gauche ? Voit-on l'arbre", "fr",
     ["Qu'", "y", "a", "-t-il", "à", "gauche", "?", "Voit", "-on", "l'", "arbre"]),
    ("Est-ce jusqu'ici ?", "fr", ["Est", "-ce", "jusqu'", "ici", "?"]),
    ("peut-être", "fr", ["peut-être"]),  # not an inverted pronoun
    # step 4: Italian elision, English clitics (Penn Treebank)
    ("dell'acqua e l'isola", "it", ["dell'", "acqua", "e", "l'", "isola"]),
    ("I don't think it's O'Brien's.", "en", ["I", "do", "n't", "think", "it", "'s", "O'Brien", "'s", "."]),
    # the clitic rules are language-specific: German keeps "geht's" whole
    ("Wie geht's?", "de", ["Wie", "geht's", "?"]),
    # step 1: typographic apostrophes are normalised
    ("l’image", "fr", ["l'", "image"]),
    # step 5: CJK characters one by one
    ("红色abc", "und", ["红", "色", "a", "b", "c"]),
])
def test_split_words(text, code, expected):
    assert [w for s in split(text, code) for w in s] == expected


def test_sentences_end_at_terminators_newlines_and_cjk_stops():
    assert split_sentences("One. Two!  Three?\nFour 3.5 five… six") == ["One.", "Two!", "Three?", "Four 3.5 five…", "six"]
    assert split_sentences("左边有一个圆形。右边有两个！好") == ["左边有一个圆形。", "右边有两个！", "好"]
    assert split_sentences("  \n ") == []


def test_region_subtags_use_the_base_language():
    assert split_words("l'image", "fr-CA") == split_words("l'image", "fr") == ["l'", "image"]
