"""The pivot corpus: every language, parallel text tied to its scene, and a
no-pivot corpus that differs only by the absence of parallel text."""

from __future__ import annotations

from collections import Counter

import pytest
from mpm_toyworld.corpus import TRANSLATE_SEP, CorpusConfig, build_corpus, tokenizer_texts
from mpm_toyworld.split import key_split

from mpm_framework.errors import MPMError
from mpm_framework.toyworld.scene import ObjectSpec, facts

N = 1500


def _key_facts(key: str):
    objects = []
    for part in key.split("|"):
        color, shape, size, position = part.split("-")
        objects.append(ObjectSpec(color, shape, size, position))
    return facts(objects)


@pytest.fixture(scope="module")
def corpora(packs):
    config = CorpusConfig(num_documents=N)
    return build_corpus(packs, 0, parallel=True, config=config), build_corpus(packs, 0, parallel=False, config=config)


def test_every_language_and_kind_is_present(corpora, packs):
    pivot, _ = corpora
    assert len(pivot) == N
    assert set(Counter(d.lang for d in pivot)) == set(packs)
    assert min(Counter(d.lang for d in pivot).values()) > N / len(packs) * 0.7
    assert set(Counter(d.kind for d in pivot)) == {"mono", "describe", "qa", "translate"}


def test_only_training_scenes(corpora):
    for corpus in corpora:
        assert all(key_split(d.scene_key) == "train" for d in corpus)


def test_translation_lines_pair_english_with_a_target_about_the_same_scene(corpora, packs):
    pivot, _ = corpora
    lines = [d for d in pivot if d.kind == "translate"]
    assert len(lines) > N * 0.05
    directions = Counter()
    for doc in lines:
        first, second = doc.langs
        assert "en" in doc.langs and first != second
        directions[(first == "en")] += 1
        left, right = doc.text.split(TRANSLATE_SEP)
        gold = _key_facts(doc.scene_key)
        assert facts(packs[first].parse_caption(left)) == gold, doc.text
        assert facts(packs[second].parse_caption(right)) == gold, doc.text
    assert directions[True] > 0 and directions[False] > 0  # both directions


def test_cross_lingual_conversations_keep_the_scene(corpora, packs):
    pivot, _ = corpora
    cross = [d for d in pivot if d.kind in ("describe", "qa") and d.parallel]
    assert cross
    for doc in cross:
        context_lang, lang = doc.langs
        assert lang == doc.lang and context_lang != lang and "en" in doc.langs
        context = doc.turns[0][1].split("\n")[0]
        assert facts(packs[context_lang].parse_caption(context)) == _key_facts(doc.scene_key)
        if doc.kind == "describe":
            assert facts(packs[lang].parse_caption(doc.turns[1][1])) == _key_facts(doc.scene_key)


def test_no_pivot_corpus_is_monolingual_with_the_same_size_and_scenes(corpora):
    pivot, mono = corpora
    assert len(mono) == len(pivot)
    assert not any(d.parallel for d in mono)
    assert all(len(d.langs) == 1 for d in mono)
    assert not any(d.kind == "translate" for d in mono)
    assert [d.scene_key for d in mono] == [d.scene_key for d in pivot]  # same scenes, same order
    assert Counter(d.lang for d in mono) == Counter(d.lang for d in pivot)


def test_corpus_is_deterministic(packs):
    config = CorpusConfig(num_documents=50)
    a = build_corpus(packs, 7, True, config)
    b = build_corpus(packs, 7, True, config)
    assert [d.as_text() for d in a] == [d.as_text() for d in b]
    assert [d.as_text() for d in a] != [d.as_text() for d in build_corpus(packs, 8, True, config)]


def test_cross_share_zero_keeps_translation_lines_but_no_cross_lingual_conversations(packs):
    """``corpus_cross_share=0`` (the demo's data ablation): parallel text only as
    translate lines; every conversation's context shares its question's language."""
    docs = build_corpus(packs, 0, True, CorpusConfig(num_documents=400, cross_share=0.0))
    kinds = Counter(d.kind for d in docs)
    assert kinds["translate"] > 0 and kinds["qa"] > 0
    assert all(len(d.langs) == 1 and not d.parallel for d in docs if d.turns)
    assert any(len(d.langs) == 2 and d.parallel for d in build_corpus(packs, 0, True, CorpusConfig(num_documents=400))
               if d.turns)


def test_english_is_required_and_kinds_are_checked(packs):
    with pytest.raises(MPMError, match="English"):
        build_corpus({"de": packs["de"]}, 0, True, CorpusConfig(num_documents=5))
    with pytest.raises(MPMError, match="unknown corpus document kinds"):
        build_corpus(packs, 0, True, CorpusConfig(num_documents=5, mix={"mono": 1, "poems": 1}))


def test_tokenizer_text_covers_every_language(packs):
    texts = tokenizer_texts(packs, 0, n=40)
    for pack in packs.values():
        assert any(prompt in texts for prompt in pack.caption_prompts)
    assert any("形" in t for t in texts) and any("Dreieck" in t or "Kreis" in t for t in texts)


def test_a_low_resource_language_gets_its_share_of_the_corpus(packs):
    base = build_corpus(packs, 0, parallel=True, config=CorpusConfig(num_documents=N))
    low = build_corpus(packs, 0, parallel=True, config=CorpusConfig(num_documents=N, lang_weights={"fr": 0.1}))
    # no weights: the uniform draw of earlier runs, document for document
    assert base == build_corpus(packs, 0, parallel=True, config=CorpusConfig(num_documents=N, lang_weights=None))
    share = Counter(d.lang for d in low)
    others = [share[c] for c in ("zh", "de", "en")]
    assert share["fr"] < 0.2 * min(others)  # 0.1 of each other language's count, give or take sampling
    partners = Counter(c for d in low if d.lang == "en" for c in d.langs if c != "en")
    assert partners["fr"] < 0.2 * partners["de"]  # English's partner is drawn with the same weights


def test_demo_settings_for_the_studies(packs, tmp_path):
    from mpm_toyworld.experiment import Demo, DemoSettings
    from mpm_toyworld.profiles import get_profile

    def demo(**changes):
        return Demo(DemoSettings(profile=get_profile("quick").replace(**changes), langs=["de", "fr"], out=tmp_path))

    assert demo().align_shares() == {"en": 1.0} and demo().corpus_weights() is None
    assert demo(align_target_share=0.2).align_shares() == pytest.approx({"en": 0.8, "de": 0.1, "fr": 0.1})
    assert demo(align_target_share=1.0).align_shares()["en"] == 0.0
    assert demo(low_resource_lang="fr", low_resource_share=0.03).corpus_weights() == {"fr": 0.03}
    with pytest.raises(MPMError, match="not a target language"):
        demo(low_resource_lang="zh", low_resource_share=0.1).corpus_weights()
    with pytest.raises(MPMError, match="align_target_share"):
        demo(align_target_share=1.5).align_shares()
