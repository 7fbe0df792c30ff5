"""Chinese toy-world grammar: measure words, 两, 的 and word order, case by case."""

import random
import re

import pytest
from mpm_lang_zh import grammar as g
from mpm_lang_zh.pack import ChinesePack

from mpm_framework.testing import check_language_pack
from mpm_framework.text import stanza_route
from mpm_framework.toyworld.scene import Obj, ObjectSpec, Question, Scene, questions_for, sample_scene

PACK = ChinesePack()


@pytest.mark.parametrize(("n", "expected"), [(1, "一个图形"), (2, "两个图形"), (3, "三个图形")])
def test_numeral_measure_word_noun(n, expected):
    assert g.counted(n, "图形") == expected


@pytest.mark.parametrize(("color", "shape", "size", "order", "expected"), [
    ("red", "circle", "small", "color-first", "一个红色的小圆形"),  # colour + 的, size attached
    ("blue", "square", "large", "color-first", "一个蓝色的大正方形"),
    ("green", "triangle", "small", "size-first", "一个小的绿色三角形"),  # size + 的, colour attached
    ("yellow", "circle", "large", "size-first", "一个大的黄色圆形"),
])
def test_noun_phrases(color, shape, size, order, expected):
    assert g.noun_phrase(color, shape, size, order) == expected


def test_word_order_of_the_location():
    rng = random.Random(0)
    scene = Scene((Obj("red", "circle", "small", "left"), Obj("blue", "square", "large", "top")))
    existential = PACK.realise_caption(scene, rng, template=PACK.caption_templates.index("existential"))
    assert re.fullmatch(r"左(边|侧)有一个(红色的小|小的红色)圆形，上(边|方)有一个(蓝色的大|大的蓝色)正方形。", existential)
    zai = PACK.realise_caption(scene, rng, template=PACK.caption_templates.index("subject-zai"))
    assert re.fullmatch(r"一个(红色的小|小的红色)圆形在左(边|侧)，一个(蓝色的大|大的蓝色)正方形在上(边|方)。", zai)
    count = PACK.realise_caption(scene, rng, template=PACK.caption_templates.index("count-first"))
    assert count.startswith("图中有两个图形：")
    single = PACK.realise_caption(Scene(scene.objects[:1]), rng, template=PACK.caption_templates.index("count-first"))
    assert single.startswith("图中只有一个图形：")


def test_count_answers_use_liang():
    rng = random.Random(0)
    answers = {PACK.realise_answer(Question("count", None, "2"), rng) for _ in range(80)}
    assert answers == {"两个。", "2个。", "图中有两个图形。", "一共有两个图形。"}


BAD = [  # errors that must never appear, each with an example of what it catches
    (r"二个", "图中有二个图形"),  # 二 before a measure word
    (r"[一两三](?![个])", "图中有两图形"),  # numeral without measure word
    (r"(圆形|正方形|三角形|△)的?(红|绿|蓝|黄|小|大)", "一个圆形的小红色"),  # modifiers after the noun
    (r"(小|大)(红|绿|蓝|黄)色", "一个大红色圆形"),  # size glued to colour ("bright red")
]


def test_the_error_patterns_catch_the_errors():
    for pattern, wrong in BAD:
        assert re.search(pattern, wrong), pattern


def test_no_grammar_error_in_thousands_of_realisations():
    rng = random.Random(11)
    texts = []
    for _ in range(1500):
        scene = sample_scene(rng, max_objects=3)
        texts += [PACK.realise_caption(scene, rng, template=t) for t in range(len(PACK.caption_templates))]
        texts += [x for q in questions_for(scene) for x in (PACK.realise_question(q, rng), PACK.realise_answer(q, rng))]
    for pattern, _ in BAD:
        # 三 of 三角形 and 一 of 一共 ("in total") are not numerals
        hits = [t for t in texts if re.search(pattern, t.replace("三角形", "△").replace("一共", "总"))]
        assert hits == [], pattern


def test_parse_handles_longest_match_and_in_total():
    assert PACK.parse_answer("一共有三个图形。", "count") == "3"
    assert PACK.parse_answer("是一个三角形。", "shape") == "triangle"
    assert PACK.parse_caption("右侧是一个黄色的大三角形，还有一个红色的小圆形在下方。") == [
        ObjectSpec("yellow", "triangle", "large", "right"), ObjectSpec("red", "circle", "small", "bottom")]


def test_offline_tokenisation_is_jieba_through_stanza():
    tok = stanza_route.get_tokenizer("zh", offline=True)
    assert tok.route == stanza_route.ROUTE_JIEBA
    assert tok.tokenize("左边有一个红色的小圆形。") == ["左边", "有", "一个", "红色", "的", "小", "圆形", "。"]
    if PACK.segmentation_route == stanza_route.ROUTE_JIEBA:  # unless stanza's own models are installed here
        assert PACK.normalize_answer("两个。") == "两个"


def test_the_shared_conformance_check():
    """What `mpm lang check zh` requires before publishing (contract, phrases, calibration,
    offline tokenisation, toy-grammar round trips and language ID)."""
    check_language_pack(PACK)
