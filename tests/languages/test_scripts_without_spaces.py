"""Scripts written without spaces, learned from a Japanese pack: metric tokens
from the pack's own segmenter, language ID between packs sharing Han decided by
lingua and the scripts (not by who registered first), toy-lexicon entries
matched on whole words, scripts classified by Unicode block."""

from __future__ import annotations

import pytest

from mpm_framework.contracts.language import PHRASE_KEYS, CalibrationPair, LanguagePack
from mpm_framework.text import langid, scripts, stanza_route
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.text.toy_lexicon import ToyLexicon

# A small dictionary segmenter: longest match, one character when nothing matches.
# A real pack wraps a maintained one (MeCab/Sudachi, stanza's Japanese model).
WORDS = {"左", "右", "上", "下", "に", "が", "の", "赤い", "青い", "黄色い", "緑の", "丸", "四角", "三角", "小さい",
         "大きい", "あります", "ありました", "でした", "した", "です", "赤色", "正方形", "左上"}


def segment(text: str) -> list[str]:
    out, i = [], 0
    longest = max(map(len, WORDS))
    while i < len(text):
        for n in range(min(longest, len(text) - i), 0, -1):
            if text[i:i + n] in WORDS or n == 1:
                if not text[i:i + n].isspace():
                    out.append(text[i:i + n])
                i += n
                break
    return out


class JapanesePack(BaseLanguagePack):
    code, name, native_name, script, lingua_name = "ja", "Japanese", "日本語", "Jpan", "JAPANESE"
    caption_prompts = ("この画像を説明してください。",)
    phrases = {k: ("{path}" if k == "paint_saved" else "{image}" if k == "chat_welcome" else "日本語") for k in PHRASE_KEYS}

    def calibration(self) -> list[CalibrationPair]:
        return []

    def segmenter(self):
        return segment


class CharJapanesePack(JapanesePack):
    """The same pack without a segmenter: the fallback."""

    def segmenter(self):
        return None


def test_metric_tokens_come_from_the_pack_segmenter():
    text = "左に赤い丸がありました。右に青い四角があります。"
    assert JapanesePack().segment_words(text) == ["左", "に", "赤い", "丸", "が", "ありました", "。",
                                                  "右", "に", "青い", "四角", "が", "あります", "。"]
    assert JapanesePack().segmentation_route == stanza_route.ROUTE_SEGMENTER
    assert JapanesePack().segment_words_many([text, "丸です"]) == [JapanesePack().segment_words(text), ["丸", "です"]]
    # without one, one token per character is the fallback
    assert CharJapanesePack().segment_words("丸でした") == ["丸", "で", "し", "た"]


def test_a_minimal_pack_can_bring_a_segmenter():
    class Minimal(LanguagePack):
        code, name, native_name, script, lingua_name = "ja", "Japanese", "日本語", "Jpan", "JAPANESE"

        def calibration(self):
            return []

        def segmenter(self):
            return segment

    assert Minimal().segment_words("丸でした") == ["丸", "でした"]


@pytest.fixture
def zh(packs):
    return packs["zh"]  # the shipped Chinese pack (tests/languages/conftest.py)


@pytest.mark.parametrize("order", ["zh-first", "ja-first"])
def test_language_id_between_packs_sharing_han(zh, order):
    ja = CharJapanesePack()  # claims nothing by hand: its script (Jpan) is evidence enough
    candidates = [zh, ja] if order == "zh-first" else [ja, zh]
    # mostly Han with a few kana: the zh pack owns every Han character, yet this is Japanese
    assert langid.identify("左上に赤色の大きい正方形があります。", candidates) == "ja"
    assert langid.identify("左上有一个红色的大正方形。", candidates) == "zh"
    assert langid.identify("这是一个红色的圆形。", candidates) == "zh"


def test_script_of_characters_by_block():
    assert [scripts.script_of(c) for c in "aé一でカ한ก1"] == ["Latn", "Latn", "Hani", "Hira", "Kana", "Hang",
                                                          "Thai", None]
    assert scripts.written_in("でした", scripts.scripts_of_pack("Jpan"))
    assert not scripts.written_in("でした", scripts.scripts_of_pack("Hans"))
    assert scripts.written_in("赤", scripts.scripts_of_pack("Hans"))
    assert all(scripts.is_unspaced(c) for c in "一でカกລ") and not any(scripts.is_unspaced(c) for c in "a한1 ")


def _ja_entries() -> dict[str, tuple[str, str]]:
    return {
        "赤い": ("color", "red"), "緑の": ("color", "green"), "青い": ("color", "blue"), "黄色い": ("color", "yellow"),
        "丸": ("shape", "circle"), "四角": ("shape", "square"), "三角": ("shape", "triangle"),
        "小さい": ("size", "small"), "大きい": ("size", "large"),
        "左": ("position", "left"), "右": ("position", "right"), "上": ("position", "top"),
        "した": ("position", "bottom"),  # 下 (shita) written in kana
        "一": ("count", "1"), "二": ("count", "2"),
    }


def test_toy_lexicon_matches_whole_words_of_the_segmenter():
    by_char = ToyLexicon("ja", _ja_entries(), boundaries=("、", "。"), segmentation="chars")
    assert by_char.parse_value("赤い丸でした。", "position") == "bottom"  # した inside でした: the old bug
    by_word = ToyLexicon("ja", _ja_entries(), boundaries=("、", "。"), segmenter=segment)
    assert by_word.parse_value("赤い丸でした。", "position") is None
    assert by_word.parse_value("丸はしたです。", "position") == "bottom"
    assert by_word.parse_value("左に赤い丸がありました。", "color") == "red"
    # a pack's segmenter is used by the shared parsing without building the lexicon again
    pack = JapanesePack()
    pack.lexicon = by_char
    assert pack.parse_answer("赤い丸でした。", "position") is None
    assert pack.parse_answer("赤い丸でした。", "color") == "red"
