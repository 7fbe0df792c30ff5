"""Renamed contract members keep their old names working, with a DeprecationWarning.

``PivotLLM.pack`` is now ``pack_sequences`` (sequence packing; a "pack" is a
language pack) and ``LanguagePack.tokenize``/``tokenize_many``/``tokenizer_route``
are ``segment_words``/``segment_words_many``/``segmentation_route`` (word
segmentation for metrics; "tokenize" is the LLM's tokenizer). A plugin written
before the rename, overriding the old name, must still be called by the core; a
caller using the old name must still get the new member's answer.
"""

from __future__ import annotations

import warnings

import pytest

from mpm_framework.contracts.language import PHRASE_KEYS, LanguagePack
from mpm_framework.evaluation.metrics import caption_tokens
from mpm_framework.testing import TinyLLM, TinyLLMConfig
from mpm_framework.text import stanza_route
from mpm_framework.training.packing import pack_in_order


class OldPackingLLM(TinyLLM):
    """An LLM plugin written before the rename: it overrides ``pack``."""

    supports_packing = True

    def pack(self, encodings, max_length):
        return pack_in_order(encodings, max_length)


class OldPackingViaSuper(TinyLLM):
    def pack(self, encodings, max_length):  # an old override that defers to the base
        return super().pack(encodings, max_length)[::-1]


def _encodings(llm):
    return [llm.encode_text("ab"), llm.encode_text("cde"), llm.encode_text("f")]


def test_old_pack_override_is_what_the_core_calls():
    llm = OldPackingLLM(TinyLLMConfig())
    encodings = _encodings(llm)
    with pytest.warns(DeprecationWarning, match="OldPackingLLM overrides 'pack'.*'pack_sequences'"):
        rows = llm.pack_sequences(encodings, 64)
    assert rows == pack_in_order(encodings, 64) and len(rows) == 1


def test_old_name_calls_the_new_member():
    llm = TinyLLM(TinyLLMConfig())
    encodings = _encodings(llm)
    with pytest.warns(DeprecationWarning, match=r"'TinyLLM.pack' is deprecated.*'pack_sequences'"):
        assert llm.pack(encodings, 64) is encodings

    class NewPackingLLM(TinyLLM):
        def pack_sequences(self, encodings, max_length):
            return encodings[:1]

    with pytest.warns(DeprecationWarning):
        assert NewPackingLLM(TinyLLMConfig()).pack(encodings, 64) == encodings[:1]


def test_old_override_calling_super_does_not_recurse():
    llm = OldPackingViaSuper(TinyLLMConfig())
    encodings = _encodings(llm)
    with pytest.warns(DeprecationWarning):
        assert llm.pack_sequences(encodings, 64) == encodings[::-1]


def test_new_names_do_not_warn():
    llm = TinyLLM(TinyLLMConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert llm.pack_sequences(_encodings(llm), 64) == _encodings(llm)
        assert NewPack().segment_words("Two Red circles.") == ["two", "red", "circles."]


class _Pack(LanguagePack):
    code, name, native_name, script, lingua_name = "xx", "Test", "Test", "Latn", "ENGLISH"
    caption_prompts = ("Describe the image.",)
    phrases = {k: ("{path}" if k == "paint_saved" else "{image}" if k == "chat_welcome" else "x") for k in PHRASE_KEYS}

    def calibration(self):
        return []


class NewPack(_Pack):
    def segmenter(self):
        return str.split


class OldTokenizePack(_Pack):
    """A pack written before the rename: it overrides ``tokenize`` (no stanza involved)."""

    def tokenize(self, text):
        return [w.strip(".").upper() for w in text.split()]


class OldTokenizeViaSuper(NewPack):
    def tokenize(self, text):
        return [w for w in super().tokenize(text) if w != "red"]


def test_old_tokenize_override_is_what_metrics_use():
    pack = OldTokenizePack()
    with pytest.warns(DeprecationWarning, match="OldTokenizePack overrides 'tokenize'.*'segment_words'"):
        assert pack.segment_words("two red circles.") == ["TWO", "RED", "CIRCLES"]
    with pytest.warns(DeprecationWarning):
        assert pack.segment_words_many(["a b", "c."]) == [["A", "B"], ["C"]]
    with pytest.warns(DeprecationWarning):
        assert pack.normalize_answer("Two circles.") == "TWO CIRCLES"
    with pytest.warns(DeprecationWarning):
        assert caption_tokens(["Two circles."], pack) == [["two", "circles"]]  # metrics lower-case


def test_old_tokenize_calling_super_does_not_recurse():
    with pytest.warns(DeprecationWarning):
        assert OldTokenizeViaSuper().segment_words("two red circles") == ["two", "circles"]


def test_old_pack_names_still_answer():
    pack = NewPack()
    with pytest.warns(DeprecationWarning, match=r"'NewPack.tokenize' is deprecated.*'segment_words'"):
        assert pack.tokenize("Two Red") == ["two", "red"]
    with pytest.warns(DeprecationWarning, match="tokenize_many"):
        assert pack.tokenize_many(["A b", "c"]) == [["a", "b"], ["c"]]
    with pytest.warns(DeprecationWarning, match="tokenizer_route"):
        assert pack.tokenizer_route == pack.segmentation_route == stanza_route.ROUTE_SEGMENTER
