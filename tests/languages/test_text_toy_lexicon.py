"""The shared toy-world parser: scanning, object assembly, answers, validation."""

import pytest

from mpm_framework.lang_en.pack import LEXICON as EN
from mpm_framework.text.toy_lexicon import ToyLexicon
from mpm_framework.toyworld.scene import ObjectSpec


def _base_entries():
    return {"red": ("color", "red"), "green": ("color", "green"), "blue": ("color", "blue"),
            "yellow": ("color", "yellow"), "circle": ("shape", "circle"), "square": ("shape", "square"),
            "triangle": ("shape", "triangle"), "small": ("size", "small"), "large": ("size", "large"),
            "left": ("position", "left"), "right": ("position", "right"), "top": ("position", "top"),
            "bottom": ("position", "bottom")}


def test_a_repeated_slot_starts_a_new_object():
    assert EN.parse_objects("a small red circle on the left a large blue square at the top") == [
        ObjectSpec("red", "circle", "small", "left"), ObjectSpec("blue", "square", "large", "top")]


def test_a_boundary_ends_an_object_only_after_its_shape():
    # "On the left," keeps its position with the circle that follows the comma
    assert EN.parse_objects("On the left, there is a red circle. A blue square.") == [
        ObjectSpec("red", "circle", None, "left"), ObjectSpec("blue", "square", None, None)]
    # a missing attribute is not borrowed from the neighbour once "and" closed the object
    assert EN.parse_objects("a red circle and a large blue square") == [
        ObjectSpec("red", "circle", None, None), ObjectSpec("blue", "square", "large", None)]


def test_count_words_are_not_object_attributes():
    assert EN.parse_objects("There are two shapes: a red circle and a blue square.") == [
        ObjectSpec("red", "circle"), ObjectSpec("blue", "square")]
    assert EN.parse_objects("nothing to see here") == []


def test_answers_take_the_first_mention_of_the_asked_kind():
    assert EN.parse_value("It is on the left, next to the red square.", "position") == "left"
    assert EN.parse_value("It is on the left, next to the red square.", "color") == "red"
    assert EN.parse_value("I do not know.", "color") is None
    assert EN.parse_value("There are 3 shapes.", "count") == "3"
    with pytest.raises(ValueError, match="unknown answer kind 'colour'"):
        EN.parse_value("red", "colour")


def test_numbers_that_double_as_articles_lose_to_real_numbers():
    lex = ToyLexicon("de", {**_base_entries(), "ein": ("count", "1"), "zwei": ("count", "2")},
                     boundaries=["und"], weak_numbers=["ein"])
    assert lex.parse_value("ein Kreis und zwei Formen", "count") == "2"
    assert lex.parse_value("ein Kreis", "count") == "1"


def test_longest_match_and_ignored_words_in_character_mode():
    entries = {"红色": ("color", "red"), "绿色": ("color", "green"), "蓝色": ("color", "blue"),
               "黄色": ("color", "yellow"), "圆形": ("shape", "circle"), "正方形": ("shape", "square"),
               "方形": ("shape", "square"), "三角形": ("shape", "triangle"), "小": ("size", "small"),
               "大": ("size", "large"), "左边": ("position", "left"), "右边": ("position", "right"),
               "上边": ("position", "top"), "下边": ("position", "bottom"), "一": ("count", "1"),
               "三": ("count", "3")}
    lex = ToyLexicon("zh", entries, boundaries=["，"], segmentation="chars", ignore=["一共"])
    assert lex.parse_value("一共有三个图形", "count") == "3"  # 一共 is "in total", not 一
    assert lex.parse_value("三角形", "shape") == "triangle"  # not 三 + 角形
    assert lex.parse_value("三角形", "count") is None
    assert lex.parse_objects("左边有一个红色的小正方形") == [ObjectSpec("red", "square", "small", "left")]


@pytest.mark.parametrize(("change", "message"), [
    ({"rot": ("color", "rot")}, "not a toy-world value"),
    ({"zwei": ("count", "two")}, "must map to digits"),
    ({"and": ("color", "red")}, "both boundaries and entries"),
])
def test_bad_lexicons_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        ToyLexicon("xx", {**_base_entries(), **change}, boundaries=["and"])


def test_every_toy_value_needs_a_surface_form():
    entries = _base_entries()
    del entries["yellow"]
    with pytest.raises(ValueError, match=r"no surface form for color \['yellow'\]"):
        ToyLexicon("xx", entries, boundaries=[])


def test_weak_numbers_must_be_count_entries():
    with pytest.raises(ValueError, match="weak numbers"):
        ToyLexicon("xx", _base_entries(), boundaries=[], weak_numbers=["un"])
