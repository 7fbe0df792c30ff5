"""The pivot's text corpus: the shapes world described in every language.

The toy pivot is a tiny Llama trained from scratch, so everything it knows
comes from here. Three kinds of documents, all about *training-split* scenes:

``mono``
    A scene description in one language (plain text).
``describe`` / ``qa``
    A conversation whose user turn holds a scene description (the *context*)
    followed by an instruction in language L -- "describe the scene" or a
    question -- and whose answer is in L. Later, in the multimodal stages, the
    image features take exactly the place of that context.
``translate``
    One scene described in English and in L on one line, ``EN => L`` or
    ``L => EN``: translation-style parallel text.

With ``parallel=True`` (the MPM pivot) a share of the ``describe``/``qa``
conversations takes its context in English while the instruction and answer
are in L (or the reverse), and ``translate`` lines are included: the pivot
sees the *same scene* in two languages and learns that they mean the same
thing -- the cross-lingual signal MPM relies on. With ``parallel=False`` (the
no-pivot ablation) every document is monolingual; the number of documents and
the mix of tasks stay the same, so the two pivots differ only in parallel data.
Only English<->L pairs are ever made (no L<->L'), as in a pivot-language setup.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.text.toy_scenes import questions_for

from .split import sample_split_scene, split_rng

TRANSLATE_SEP = " => "


@dataclass
class CorpusConfig:
    num_documents: int = 20000
    # Share of each document kind (normalised).
    mix: dict[str, float] = field(
        default_factory=lambda: {"mono": 0.2, "describe": 0.3, "qa": 0.4, "translate": 0.1}
    )
    # Among describe/qa documents of a non-English language (and of English),
    # the share whose context is in the other language of an EN<->L pair.
    cross_share: float = 0.5
    # Relative weight of a language's documents (default 1 each): how often it
    # is drawn, as a document's language and as English's partner. None keeps
    # the uniform draw (and its random stream) of earlier runs.
    lang_weights: dict[str, float] | None = None


@dataclass
class Document:
    """One pretraining document. ``turns`` (user, assistant) for conversations,
    ``text`` for plain text; ``langs`` lists every language it contains and
    ``scene_key`` ties parallel documents to their scene."""

    kind: str
    lang: str
    scene_key: str
    text: str | None = None
    turns: list[tuple[str, str]] | None = None
    langs: tuple[str, ...] = ()
    parallel: bool = False

    def as_text(self) -> str:
        """The document as plain text (tokenizer training, statistics)."""
        if self.text is not None:
            return self.text
        return "\n".join(content for _, content in self.turns or [])


def _pick(rng, codes: list[str], weights: dict[str, float] | None) -> str:
    if weights is None:
        return rng.choice(codes)
    return rng.choices(codes, weights=[weights.get(c, 1.0) for c in codes])[0]


def _pick_kind(rng: random.Random, mix: Mapping[str, float]) -> str:
    kinds = [k for k, w in mix.items() if w > 0]
    return rng.choices(kinds, weights=[mix[k] for k in kinds])[0]


def build_corpus(
    packs: Mapping[str, LanguagePack],
    seed: int,
    parallel: bool,
    config: CorpusConfig | None = None,
) -> list[Document]:
    """Documents about training-split scenes in every language of ``packs``.

    ``packs`` must contain English (the pivot language). Languages are drawn
    uniformly per document."""
    from mpm_framework.errors import MPMError

    from .split import scene_key

    config = config or CorpusConfig()
    if "en" not in packs:
        raise MPMError("the toy corpus needs the English pack (the pivot language)")
    unknown = set(config.mix) - {"mono", "describe", "qa", "translate"}
    if unknown:
        raise MPMError(f"unknown corpus document kinds: {sorted(unknown)}")
    langs = sorted(packs)
    targets = [c for c in langs if c != "en"]
    # Three streams: scenes, the document plan (language, kind, direction) and
    # the wording. Both pivots' corpora thus share scenes, languages and kinds
    # document by document; only the parallel documents are replaced.
    scene_rng = split_rng(seed, "corpus-scenes")
    plan = split_rng(seed, "corpus-plan")
    rng = split_rng(seed, "corpus-text")
    docs: list[Document] = []
    for _ in range(config.num_documents):
        scene = sample_split_scene(scene_rng, "train")
        key = scene_key(scene)
        lang = _pick(plan, langs, config.lang_weights)
        kind = _pick_kind(plan, config.mix)
        cross = plan.random() < config.cross_share
        partner = _pick(plan, targets, config.lang_weights) if lang == "en" and targets else "en"
        english_first = plan.random() < 0.5
        if not parallel or not targets:
            cross = False
            if kind == "translate":
                kind = "mono"  # keep the document count; no parallel line
        pack = packs[lang]
        if kind == "mono":
            docs.append(Document("mono", lang, key, text=pack.realise_caption(scene, rng), langs=(lang,)))
            continue
        if kind == "translate":
            other = partner if lang == "en" else "en"
            first, second = (other, lang) if english_first else (lang, other)
            text = (
                packs[first].realise_caption(scene, rng) + TRANSLATE_SEP + packs[second].realise_caption(scene, rng)
            )
            docs.append(Document("translate", lang, key, text=text, langs=(first, second), parallel=True))
            continue
        context_lang = partner if cross else lang
        context = packs[context_lang].realise_caption(scene, rng)
        if kind == "describe":
            instruction = rng.choice(pack.caption_prompts)
            answer = pack.realise_caption(scene, rng)
        else:
            question = rng.choice(questions_for(scene))
            instruction = pack.realise_question(question, rng)
            answer = pack.realise_answer(question, rng)
        docs.append(
            Document(
                kind, lang, key,
                turns=[("user", f"{context}\n{instruction}"), ("assistant", answer)],
                langs=tuple(dict.fromkeys((context_lang, lang))),
                parallel=cross,
            )
        )
    return docs


def tokenizer_texts(packs: Mapping[str, LanguagePack], seed: int, n: int = 4000) -> list[str]:
    """Text for training the pivot's tokenizer: captions, questions, answers and
    prompts in every language (the same for both pivots, so tokenisation is
    never the difference between them)."""
    rng = split_rng(seed, "tokenizer")
    texts: list[str] = []
    for pack in packs.values():
        texts.extend(pack.caption_prompts)
    codes = sorted(packs)
    for i in range(n):
        scene = sample_split_scene(rng, "train")
        pack = packs[codes[i % len(codes)]]
        question = rng.choice(questions_for(scene))
        texts.append(pack.realise_caption(scene, rng))
        texts.append(pack.realise_question(question, rng) + " " + pack.realise_answer(question, rng))
    return texts
