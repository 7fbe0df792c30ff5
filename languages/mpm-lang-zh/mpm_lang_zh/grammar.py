"""The toy world in Chinese: measure words, 两 before measure words, 的, word order.

- A numeral never stands directly before a noun: it takes a measure word,
  here 个 (the classifier of 圆形, 正方形, 三角形 and 图形): 一个圆形, 三个图形.
- Two before a measure word is 两, not 二: 两个图形.
- Modifiers precede the noun. A disyllabic colour word takes 的, a
  monosyllabic size adjective attaches directly: 一个红色的小圆形; the other
  order needs 的 after the size: 一个小的红色圆形 (never 大红色, which means
  "bright red").
- Location: existential 左边有一个……, or subject + 在 + place: ……在左边.
"""

from __future__ import annotations

import unicodedata

from mpm_framework.text.toy_lexicon import ToyLexicon

NOUN = {"circle": "圆形", "square": "正方形", "triangle": "三角形"}
MEASURE = {"圆形": "个", "正方形": "个", "三角形": "个", "图形": "个"}
COLOR = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色"}
SIZE = {"small": "小", "large": "大"}
POSITION = {
    "left": ("左边", "左侧"),
    "right": ("右边", "右侧"),
    "top": ("上边", "上方"),
    "bottom": ("下边", "下方"),
}
NUMERAL = {"1": "一", "2": "两", "3": "三"}  # the forms used before a measure word


def counted(n: int, noun: str) -> str:
    """Numeral + measure word + noun: 两个图形."""
    return f"{NUMERAL[str(n)]}{MEASURE[noun]}{noun}"


def noun_phrase(color: str, shape: str, size: str, order: str = "color-first") -> str:
    """一个红色的小圆形 (``color-first``) or 一个小的红色圆形 (``size-first``)."""
    noun = NOUN[shape]
    head = counted(1, noun)[: -len(noun)]  # 一个
    if order == "color-first":
        return f"{head}{COLOR[color]}的{SIZE[size]}{noun}"
    if order == "size-first":
        return f"{head}{SIZE[size]}的{COLOR[color]}{noun}"
    raise ValueError(f"order must be 'color-first' or 'size-first', not {order!r}")


def is_han(char: str) -> bool:
    return unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH")


def _entries() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for value, word in COLOR.items():
        out.update({word: ("color", value), word[0]: ("color", value)})  # 红色 / 红
    out.update({"小": ("size", "small"), "大": ("size", "large")})
    out.update({"圆形": ("shape", "circle"), "圆": ("shape", "circle"), "圆圈": ("shape", "circle"),
                "正方形": ("shape", "square"), "方形": ("shape", "square"), "方块": ("shape", "square"),
                "三角形": ("shape", "triangle"), "三角": ("shape", "triangle")})
    for value, words in {"left": ("左边", "左侧", "左面", "左"), "right": ("右边", "右侧", "右面", "右"),
                         "top": ("上边", "上方", "上面", "顶部", "上部"),
                         "bottom": ("下边", "下方", "下面", "底部", "下部")}.items():
        out.update({w: ("position", value) for w in words})
    numbers = {"一": "1", "1": "1", "两": "2", "二": "2", "俩": "2", "2": "2", "三": "3", "3": "3"}
    out.update({w: ("count", n) for w, n in numbers.items()})
    return out


LEXICON = ToyLexicon(
    "zh",
    _entries(),
    boundaries=("和", "还有", "以及", "，", "。", "；", "：", "、", "！", "？", ",", ".", ";", ":"),
    segmentation="chars",
    ignore=("一共", "一下", "一起"),
)
