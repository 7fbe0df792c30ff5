import pytest
from mpm_llm_cpm_bee.testing import TEST_TOKENS
from mpm_llm_cpm_bee.tokenizer import CPMBeeTokenizer, VariantTable, builtin_vocab, escape, unescape

from mpm_framework.errors import DataError


def test_vocab_file_format(vocab_file, tokenizer):
    lines = vocab_file.read_text(encoding="utf-8").split("\n")
    assert lines[:11] == ["<pad>", "<unk>", "<mask>", "<sep>", "</n>", "</_>", "<s>", "</s>", "<root>", "<ans>",
                          "<option>"]
    # </n> and </_> are the newline and the space, at their line numbers.
    assert tokenizer.encoder["\n"] == 4 and tokenizer.encoder[" "] == 5
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id) == (0, 1, 6, 7)
    assert tokenizer.vocab_size == len(TEST_TOKENS)
    assert tokenizer.tokens() == TEST_TOKENS


def test_greedy_longest_match(tokenizer):
    ids, subs = tokenizer.encode("the thing")
    pieces = [tokenizer.decoder[i] for i in ids]
    assert pieces == ["the", " ", "th", "ing"]
    assert subs == [0, 0, 0, 0]
    ids, _ = tokenizer.encode("你好中国")
    assert [tokenizer.decoder[i] for i in ids] == ["你好", "中国"]


def test_escaping_and_special_tokens(tokenizer):
    ids, _ = tokenizer.encode("a<<b<ans>")
    assert [tokenizer.decoder[i] for i in ids] == ["a", "<", "b", "<ans>"]
    with pytest.raises(DataError, match="write a literal"):
        tokenizer.encode("a<b")
    with pytest.raises(DataError, match="write a literal"):
        tokenizer.encode("<ans<x>>")
    assert unescape(escape("x<y<<z")) == "x<y<<z"


def test_variants_get_sub_indices_in_order_of_appearance(tokenizer):
    variants = VariantTable()
    # Unknown runs -> <unk> variants; unknown special tokens -> variants of their base.
    ids, subs = tokenizer.encode("ab😀😀c🙂<mask_7><mask_2><mask_7>😀😀", variants)
    unk, mask = tokenizer.unk_id, tokenizer.encoder["<mask>"]
    assert ids == [tokenizer.encoder["a"], tokenizer.encoder["b"], unk, tokenizer.encoder["c"], unk,
                   mask, mask, mask, unk]
    assert subs == [0, 0, 0, 0, 1, 0, 1, 0, 0]
    # Numbering continues across the segments of one sample.
    ids2, subs2 = tokenizer.encode("🙂<mask_9>", variants)
    assert (ids2, subs2) == ([unk, mask], [1, 2])
    with pytest.raises(DataError, match="no base token"):
        tokenizer.encode("<nosuch_1>")


@pytest.mark.parametrize("text", [
    "The thing is red, and it is on the left.",
    "图片中有一个红色的圆形。你好！",
    "Mixed 中英 text with <ans> and <s> tokens, escaped <<tags>> and 😀 emoji <mask_3>.",
    "line one\nline two\n\n  spaced",
])
def test_round_trip(tokenizer, text):
    variants = VariantTable()
    ids, subs = tokenizer.encode(text, variants)
    assert tokenizer.decode(ids, subs, variants) == text


def test_decode_plain_drops_special_tokens(tokenizer):
    ids, _ = tokenizer.encode("<s>红色<<1></s>")
    assert tokenizer.decode_plain(ids) == "红色<1>"


def test_builtin_vocab_covers_chinese():
    tok = CPMBeeTokenizer.builtin()
    assert len(builtin_vocab()) == tok.vocab_size
    ids, subs = tok.encode("图片里有一个蓝色的正方形。")
    assert tok.unk_id not in ids and not any(subs)


def test_bad_vocab_is_a_clear_error(tmp_path):
    bad = tmp_path / "vocab.txt"
    bad.write_text("<unk>\na\n", encoding="utf-8")
    with pytest.raises(DataError, match="lacks the required token"):
        CPMBeeTokenizer.from_file(bad)
    with pytest.raises(DataError, match="not found"):
        CPMBeeTokenizer.from_file(tmp_path / "missing.txt")
