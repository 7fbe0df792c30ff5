"""Loading checkpoints: local directories, hub ids offline, wrong architectures,
image-token resizing and full save/load round trips. Nothing is downloaded."""

from __future__ import annotations

import json

import pytest
import torch

from mpm_framework.contracts.prompt import Turn
from mpm_framework.errors import ConfigError


def _llama(**options):
    from mpm_llm_llama.config import LlamaLLMConfig, TinyConfig
    from mpm_llm_llama.model import LlamaLLM

    if "tiny" in options:
        options["tiny"] = TinyConfig(**options["tiny"])
    return LlamaLLM.from_config(LlamaLLMConfig(**options))


def test_missing_local_path_says_not_found_and_how_to_fix(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as info:
        _llama(path=str(missing))
    message = str(info.value)
    assert "not found" in message and str(missing) in message and "model.llm.path" in message


def test_hub_id_offline_says_not_found_and_how_to_use_a_local_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never touch the network in tests
    with pytest.raises(ConfigError) as info:
        _llama(path="mpm-tests/no-such-llama")
    message = str(info.value)
    assert "not found" in message and "offline" in message
    assert "--local-dir" in message and "model.llm.path=DIR" in message


def test_a_file_or_a_directory_without_config_is_rejected(tmp_path):
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="checkpoint \\*directory\\*"):
        _llama(path=str(tmp_path / "weights.safetensors"))
    with pytest.raises(ConfigError, match=r"no config\.json"):
        _llama(path=str(tmp_path), tokenizer_path="")


def test_llama_refuses_other_architectures_and_points_to_hf_causal_lm(qwen2_dir):
    with pytest.raises(ConfigError, match=r"'qwen2' model.*'hf-causal-lm'"):
        _llama(path=str(qwen2_dir))


def test_trust_remote_code_is_off_by_default(llama_dir):
    from mpm_llm_llama.config import HFCausalLMConfig, LlamaLLMConfig

    assert LlamaLLMConfig().trust_remote_code is False and HFCausalLMConfig().trust_remote_code is False


def test_missing_image_token_grows_the_vocabulary_and_saves_round_trip(llama_dir, tmp_path):
    llm = _llama(path=str(llama_dir), image_token="<img_slot>")
    from transformers import AutoTokenizer

    base = len(AutoTokenizer.from_pretrained(str(llama_dir)))
    assert llm.image_token_id == base and llm.vocab_size == base + 1
    enc = llm.format_prompt([Turn("user", "<image> hi"), Turn("assistant", "ok")], 3)
    assert enc.num_image_slots == 3
    llm.save_pretrained(tmp_path / "saved")
    again = _llama(path=str(tmp_path / "saved"), image_token="<img_slot>")
    assert again.vocab_size == llm.vocab_size and again.image_token_id == llm.image_token_id
    assert again.format_prompt([Turn("user", "<image> hi"), Turn("assistant", "ok")], 3) == enc
    batch = llm.collate([enc])
    with torch.no_grad():
        a = llm.eval()(llm.embed_tokens(batch["input_ids"]), batch).logits
        b = again.eval()(again.embed_tokens(batch["input_ids"]), batch).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_chat_template_override_and_fallback_are_saved_with_the_checkpoint(llama_dir, tmp_path):
    template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
    path = tmp_path / "t.jinja"
    path.write_text(template)
    llm = _llama(path=str(llama_dir), chat_template=str(path))
    assert llm.tokenizer.chat_template == template
    llm.save_pretrained(tmp_path / "saved")
    assert _llama(path=str(tmp_path / "saved")).tokenizer.chat_template == template
    with pytest.raises(ConfigError, match="neither a Jinja template nor an existing"):
        _llama(path=str(llama_dir), chat_template="missing.jinja")


def test_random_model_without_a_tokenizer_uses_bytes_and_is_seeded():
    a, b = _llama(tiny={"hidden_size": 16, "num_layers": 1}), _llama(tiny={"hidden_size": 16, "num_layers": 1})
    assert a.vocab_size == 263  # 256 bytes + 7 special tokens
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    state = torch.random.get_rng_state()
    _llama(tiny={"hidden_size": 16, "num_layers": 1, "seed": 3})
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random stream is untouched
    assert a.decode_text(a.encode_text("grün 绿").input_ids) == "grün 绿"


def test_saved_checkpoint_is_a_plain_transformers_checkpoint(llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    llm = _llama(path=str(llama_dir))
    llm.save_pretrained(tmp_path / "out")
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "llama"
    ref = AutoModelForCausalLM.from_pretrained(str(tmp_path / "out")).eval()
    ids = torch.tensor([llm.encode_text("a red circle").input_ids])
    with torch.no_grad():
        torch.testing.assert_close(ref(ids).logits, llm.eval()(llm.embed_tokens(ids), {"attention_mask": torch.ones_like(ids)}).logits, rtol=0, atol=0)
