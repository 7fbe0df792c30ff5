"""The toy pivot's tokenizer: the llama plugin's format, every character of a
script written without spaces (Han, kana, Thai...) kept apart."""

from __future__ import annotations

import pytest

from mpm_framework.contracts.prompt import Turn

pytest.importorskip("mpm_llm_llama")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, packs):
    from mpm_llm_llama.toy import train_tokenizer
    from mpm_toyworld.corpus import tokenizer_texts

    path = tmp_path_factory.mktemp("toytok")
    train_tokenizer(tokenizer_texts(packs, 0, n=400), vocab_size=600, path=path, split_unspaced=True)
    return path


def test_han_characters_never_merge_across_characters(tokenizer_dir, packs):
    import random

    from transformers import AutoTokenizer

    from mpm_framework.toyworld.scene import sample_scene

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rng = random.Random(0)
    for _ in range(20):
        text = packs["zh"].realise_caption(sample_scene(rng), rng)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        pieces = [tok.decode([i]) for i in ids]
        assert all(len(p) == 1 for p in pieces if any("\u4e00" <= ch <= "\u9fff" for ch in p)), pieces
        assert tok.decode(ids) == text
    words = tok(" triangle", add_special_tokens=False)["input_ids"]
    assert len(words) == 1  # Latin words still merge into whole-word tokens


# Japanese (kana + Han) and Thai: scripts without spaces other than Chinese.
UNSPACED_TEXTS = ["左に赤い丸があります。", "右に青い四角がありました。", "上に小さい三角でした。",
                  "วงกลมสีแดงอยู่ทางซ้าย", "สี่เหลี่ยมสีน้ำเงินอยู่ทางขวา"]


def test_kana_and_thai_never_merge_across_characters(tmp_path):
    from mpm_llm_llama.toy import train_tokenizer

    from mpm_framework.text.scripts import is_unspaced

    tok = train_tokenizer(UNSPACED_TEXTS * 50 + ["the red circle is on the left"] * 50, vocab_size=400,
                          path=tmp_path, split_unspaced=True)
    for text in UNSPACED_TEXTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        pieces = [tok.decode([i]) for i in ids]
        assert all(len(p) == 1 for p in pieces if any(is_unspaced(c) for c in p)), pieces
        assert tok.decode(ids) == text
    # without the split, byte-level BPE fuses runs of kana into multi-character tokens
    fused = train_tokenizer(UNSPACED_TEXTS * 50, vocab_size=400)
    pieces = [fused.decode([i]) for i in fused("右に青い四角がありました。", add_special_tokens=False)["input_ids"]]
    assert any(len(p) > 1 for p in pieces)


def test_the_llama_plugin_loads_it_with_the_toy_chat_format(tokenizer_dir):
    from mpm_llm_llama.toy import build_tiny_llama

    from mpm_framework.contracts.base import BuildContext
    from mpm_framework.plugins import get_registry

    build_tiny_llama(tokenizer_dir, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2,
                     initializer_range=0.1)
    cls = get_registry().get("llm", "llama").load_factory()
    llm = cls.from_config(cls.config_class(path=str(tokenizer_dir)), BuildContext())
    enc = llm.format_prompt([Turn("user", "<image>\n描述一下这张图片。"), Turn("assistant", "左边有一个红色圆形。")], 4)
    assert enc.num_image_slots == 4
    answer = [t for t, label in zip(enc.input_ids, enc.labels) if label != -100]
    assert llm.decode_text(answer) == "左边有一个红色圆形。"
    weights = llm.hf.get_input_embeddings().weight
    assert 0.07 < float(weights.detach().std()) < 0.13  # drawn with the toy init, not transformers' 0.02


def test_tower_position_embeddings_are_redrawn_reproducibly():
    from mpm_toyworld.experiment import init_position_embeddings
    from mpm_vision_clip.config import ClipVisionConfig, TowerTinyConfig
    from mpm_vision_clip.encoder import ClipEncoder

    from mpm_framework.contracts.base import BuildContext

    cfg = ClipVisionConfig(feature_layer=-1, tiny=TowerTinyConfig(image_size=64, patch_size=16))
    towers = [ClipEncoder.from_config(cfg, BuildContext()) for _ in range(2)]
    assert [init_position_embeddings(t, 0.5, seed=3) for t in towers] == [1, 1]
    tables = [dict(t.named_parameters())["model.embeddings.position_embedding.weight"].detach() for t in towers]
    assert tables[0].equal(tables[1]) and 0.4 < float(tables[0].std()) < 0.6
    assert init_position_embeddings(towers[0], 0.0, seed=3) == 0


def test_token_stats_per_language(packs, tmp_path):
    """The tokenizer diagnostic the demo writes per seed (pivot-init/token_stats.json)."""
    from mpm_llm_llama.toy import train_tokenizer
    from mpm_toyworld.corpus import tokenizer_texts
    from mpm_toyworld.tokens import token_stats

    train_tokenizer(tokenizer_texts(packs, 0, n=400), vocab_size=400, path=tmp_path, split_unspaced=True)
    stats = token_stats(packs, tmp_path / "tokenizer.json", 0, n=30)
    assert set(stats) == set(packs)
    for lang, s in stats.items():
        assert s["tokens_per_caption"] >= s["words_per_caption"] * s["whole_words"] > 0, lang
        assert 0 < s["whole_words"] <= 1
    assert stats["zh"]["words_per_caption"] > stats["en"]["words_per_caption"]  # zh: a character is a word
