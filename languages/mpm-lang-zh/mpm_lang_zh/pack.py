"""The Chinese pack: identity, prompts, phrases and toy-world realisation."""

from __future__ import annotations

import random

from mpm_framework.contracts.language import CalibrationPair
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.toyworld.scene import Obj, Question, Scene

from . import grammar as g


class ChinesePack(BaseLanguagePack):
    code = "zh"
    name = "Chinese"
    native_name = "中文"
    script = "Hans"
    lingua_name = "CHINESE"
    stanza_code = "zh"
    caption_prompts = (
        "描述一下这张图片。",
        "图片里有什么？",
        "为这张图片写一句简短的说明。",
        "简单描述一下你看到的内容。",
        "用一句话描述这张图片。",
    )
    instruction_templates = (
        "{question}",
        "请看图回答：{question}",
        "{question}请简要回答。",
        "这是一张图片。{question}",
    )
    phrases = {
        "user": "用户",
        "assistant": "助手",
        "system": "你是一个乐于助人的助手。你会观察图片，并用中文回答与图片有关的问题。",
        "image": "图片",
        "answer_in_language": "请用中文回答。",
        "paint_prompt": "画：",
        "paint_saved": "图片已保存到 {path}。",
        "chat_welcome": "正在讨论 {image}。请提出关于这张图片的问题。",
        "chat_exit_hint": "输入 exit 或按 Ctrl-D 退出。",
        "chat_goodbye": "再见！",
    }
    lexicon = g.LEXICON
    caption_templates = ("existential", "subject-zai", "count-first", "huamian", "zhe-zhang", "hai-you")

    def calibration(self) -> list[CalibrationPair]:
        from .calibration import PAIRS

        return [CalibrationPair(q, a, q_en, a_en) for q_en, a_en, q, a in PAIRS]

    def owns_word(self, word: str) -> bool:
        """Han characters are Chinese evidence in themselves (the other packs
        shipped here write Latin script)."""
        return super().owns_word(word) or (bool(word) and all(g.is_han(c) for c in word))

    # -- toy world -------------------------------------------------------------
    def _np(self, o: Obj, rng: random.Random) -> str:
        return g.noun_phrase(o.color, o.shape, o.size, rng.choice(("color-first", "size-first")))

    def _pos(self, position: str, rng: random.Random) -> str:
        return rng.choice(g.POSITION[position])

    def realise_caption(self, scene: Scene, rng: random.Random, template: int | None = None) -> str:
        t = self.caption_templates[rng.randrange(len(self.caption_templates)) if template is None else template]
        objs = scene.objects
        if t == "existential":  # 左边有一个红色的小圆形
            parts = [f"{self._pos(o.position, rng)}有{self._np(o, rng)}" for o in objs]
        elif t == "subject-zai":  # 一个红色的小圆形在左边
            parts = [f"{self._np(o, rng)}在{self._pos(o.position, rng)}" for o in objs]
        elif t == "count-first":  # 图中有两个图形：左边是……
            parts = [f"{self._pos(o.position, rng)}是{self._np(o, rng)}" for o in objs]
            head = "图中只有一个图形" if scene.count == 1 else f"图中有{g.counted(scene.count, '图形')}"
            return f"{head}：" + "，".join(parts) + "。"
        elif t == "huamian":  # 画面左侧是…… (画面 pairs with 侧/方, not 边)
            parts = [f"画面{g.POSITION[o.position][1]}是{self._np(o, rng)}" for o in objs]
        elif t == "zhe-zhang":  # 这张图片里，左边有……
            parts = [f"{self._pos(o.position, rng)}有{self._np(o, rng)}" for o in objs]
            return "这张图片里，" + "，".join(parts) + "。"
        else:  # hai-you: ……在左边，还有……在上方
            parts = [f"{self._np(o, rng)}在{self._pos(o.position, rng)}" for o in objs]
            return parts[0] + "".join(f"，还有{p}" for p in parts[1:]) + "。"
        return "，".join(parts) + "。"

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("图中有几个图形？", "图片里一共有多少个图形？", "这张图里有几个形状？"))
        assert q.target is not None
        noun = g.NOUN[q.target.shape]
        if q.kind == "color":
            options = (f"{noun}是什么颜色的？", f"图中的{noun}是什么颜色？", f"那个{noun}是什么颜色的？")
        elif q.kind == "position":
            options = (f"{noun}在哪里？", f"{noun}在图片的什么位置？", f"图中的{noun}在哪儿？")
        else:
            pos = self._pos(q.target.position, rng)
            options = (f"{pos}是什么形状？", f"{pos}的图形是什么形状的？", f"{pos}有什么图形？")
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            n = int(q.answer)
            options = [f"{g.NUMERAL[q.answer]}个。", f"{n}个。", f"图中有{g.counted(n, '图形')}。"]
            options.append("只有一个图形。" if n == 1 else f"一共有{g.counted(n, '图形')}。")
            return rng.choice(options)
        assert q.target is not None
        noun = g.NOUN[q.target.shape]
        if q.kind == "position":
            pos = self._pos(q.answer, rng)
            return rng.choice((f"在{pos}。", f"它在{pos}。", f"{noun}在{pos}。", f"{pos}。"))
        if q.kind == "shape":
            answer = g.NOUN[q.answer]
            pos = self._pos(q.target.position, rng)
            return rng.choice((f"{answer}。", f"是一个{answer}。", f"{pos}是一个{answer}。"))
        color = g.COLOR[q.answer]
        return rng.choice((f"{color}。", f"{color}的。", f"它是{color}的。", f"{noun}是{color}的。"))
