"""``mpm translate``: a tiny random MarianMT saved locally, and the pivot LLM."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from mpm_framework.cli.main import cli
from mpm_framework.testing import TinyLLM, TinyLLMConfig
from mpm_framework.training.translate import (
    PivotLLMTranslator,
    Seq2SeqTranslator,
    Translator,
    translate_file,
    translate_records,
)

WORDS = "what is in the image describe it a red cat sits on mat two dogs".split()

LLAVA = [
    {"id": "1", "image": "coco/1.jpg", "conversations": [
        {"from": "human", "value": "<image>\nwhat is in the image"},
        {"from": "gpt", "value": "a red cat sits on the mat"},
        {"from": "human", "value": "describe it"},
        {"from": "gpt", "value": "two dogs"}]},
    {"id": "2", "conversations": [{"from": "human", "value": "describe it\n<image>"},
                                  {"from": "gpt", "value": "a cat"}], "image": "coco/2.jpg"},
]


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    """A random MarianMT with a word-level tokenizer, saved in the transformers format."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("marian")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = MarianConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=0, eos_token_id=1,
                          decoder_start_token_id=0, forced_eos_token_id=1)
    model = MarianMTModel(config)
    with torch.no_grad():  # random weights: keep it from emitting only special tokens
        model.final_logits_bias[:, :3] = -1e4
    model.save_pretrained(folder)
    return folder


class Upper(Translator):
    def __init__(self):
        self.calls = []

    def translate(self, texts):
        self.calls.append(list(texts))
        return [t.upper() for t in texts]


def test_structure_markers_and_lang_are_kept():
    upper = Upper()
    out = translate_records(LLAVA, upper, "de", batch_size=3)
    assert out[0]["conversations"][0] == {"from": "human", "value": "<image>\nWHAT IS IN THE IMAGE"}
    assert out[1]["conversations"][0]["value"] == "DESCRIBE IT\n<image>"
    assert [t["from"] for t in out[0]["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert out[0]["id"] == "1" and out[0]["image"] == "coco/1.jpg" and all(r["lang"] == "de" for r in out)
    flat = [t for call in upper.calls for t in call]
    assert len(flat) == len(set(flat)) == 5 and max(len(c) for c in upper.calls) <= 3  # each text once
    assert LLAVA[0]["conversations"][0]["value"].startswith("<image>\nwhat")  # input untouched


def test_seq2seq_translator_matches_transformers_generate(tiny_marian):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    translator = Seq2SeqTranslator(tiny_marian, max_new_tokens=6)
    texts = ["a red cat", "describe the image"]
    tok = AutoTokenizer.from_pretrained(tiny_marian)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_marian)
    ids = model.generate(**tok(texts, return_tensors="pt", padding=True), max_new_tokens=6, num_beams=1)
    out = translator.translate(texts)
    assert out == [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]
    assert all(out) and all(w in WORDS for t in out for w in t.split())


def test_translate_cli_with_a_local_mt_checkpoint(tiny_marian, tmp_path):
    src = tmp_path / "llava.json"
    src.write_text(json.dumps(LLAVA))
    out = tmp_path / "llava.zh.json"
    result = CliRunner().invoke(cli, ["translate", str(src), "-o", str(out), "--to", "zh", "--model",
                                      str(tiny_marian), "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert len(data) == 2 and all(r["lang"] == "zh" for r in data)
    first = data[0]["conversations"][0]["value"]
    assert first.startswith("<image>\n") and first.count("<image>") == 1 and len(first) > len("<image>\n")
    assert first != LLAVA[0]["conversations"][0]["value"]
    assert [len(r["conversations"]) for r in data] == [4, 2]


def test_jsonl_layout_and_bad_lines(tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text('{"image": "a.png", "text": "a cat"}\n{broken\n\n{"image": "b.png", "caption": "dogs"}\n')
    report = translate_file(src, tmp_path / "out.jsonl", Upper(), "fr", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r.get("text") or r.get("caption") for r in lines] == ["A CAT", "DOGS"]
    assert report["skipped"] == 1 and "pairs.jsonl:2" in report["problems"][0]


def test_pivot_llm_translator_runs_the_decoding_loop():
    from mpm_framework.inference.generation import GenerationConfig

    translator = PivotLLMTranslator(TinyLLM(TinyLLMConfig()), "German", generation=GenerationConfig(max_new_tokens=5))
    out = translator.translate(["a red cat", "two dogs"])
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    assert out == translator.translate(["a red cat", "two dogs"])  # greedy: deterministic


def test_translate_cli_errors_are_clear(tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text("{}\n")
    result = CliRunner().invoke(cli, ["translate", str(src), "-o", str(tmp_path / "y"), "--to", "zh"])
    assert result.exit_code != 0 and "--model" in result.output
