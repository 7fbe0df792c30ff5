"""``model.llm.quantize=int8``: every linear layer but the LM head holds int8
weights (torch's dynamic int8 on CPU). Parity with fp32 on a random checkpoint
of a trained model's scale (width 256, 4 layers, init std 0.02: wider inits
make a random network chaotic and amplify any rounding), within TOLERANCE:
logits cosine (mean over positions, and the worst one), argmax agreement, and
greedy continuations' token agreement (which, once a token differs, compares
different texts: reported, bounded loosely)."""

from __future__ import annotations

import pytest
import torch

from mpm_framework.errors import ConfigError

TOLERANCE = {"cosine_mean": 0.995, "cosine_min": 0.99, "argmax": 0.90, "greedy": 0.5}


@pytest.fixture(scope="module")
def llama256_dir(tmp_path_factory):
    from mpm_llm_llama.toy import byte_tokenizer, tiny_llama_config
    from transformers import LlamaForCausalLM

    tok = byte_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_llama_config(tok, initializer_range=0.02, hidden_size=256, intermediate_size=688,
                                               num_layers=4, num_heads=4, num_kv_heads=2,
                                               max_position_embeddings=256))
    path = tmp_path_factory.mktemp("llama256")
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def _llama(path, **options):
    from mpm_llm_llama.model import LlamaLLM

    return LlamaLLM.from_pretrained(path, **options).eval()


def _ids(vocab, n=4, length=24):
    return torch.randint(3, vocab, (n, length), generator=torch.Generator().manual_seed(0))


def parity(fp32, int8, ids, new_tokens=16) -> dict[str, float]:
    """Logits cosine (min over positions), argmax agreement, greedy token agreement."""
    with torch.no_grad():
        a, b = fp32.hf(ids).logits, int8.hf(ids).logits
        cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
        argmax = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
        ga = fp32.hf.generate(ids[:, :8], max_new_tokens=new_tokens, do_sample=False, min_new_tokens=new_tokens)
        gb = int8.hf.generate(ids[:, :8], max_new_tokens=new_tokens, do_sample=False, min_new_tokens=new_tokens)
    greedy = (ga[:, 8:] == gb[:, 8:]).float().mean().item()
    return {"cosine_mean": cos.mean().item(), "cosine_min": cos.min().item(), "argmax": argmax, "greedy": greedy}


def test_int8_llm_matches_fp32_within_tolerance(llama256_dir):
    from mpm_framework.quantize import is_quantized

    fp32, int8 = _llama(llama256_dir), _llama(llama256_dir, quantize="int8")
    assert is_quantized(int8.hf) and not is_quantized(fp32.hf)
    assert isinstance(int8.hf.lm_head, torch.nn.Linear)  # the head stays fp32
    layer = int8.hf.model.layers[0]
    assert is_quantized(layer.self_attn.q_proj) and is_quantized(layer.mlp.down_proj)
    assert not is_quantized(int8.hf.lm_head)
    result = parity(fp32, int8, _ids(fp32.vocab_size))
    print("int8 parity", result)
    for key, bound in TOLERANCE.items():
        assert result[key] >= bound, (key, result)


def test_int8_needs_fp32_and_refuses_lora(llama_dir):
    with pytest.raises(ConfigError, match="needs dtype fp32"):
        _llama(llama_dir, quantize="int8", dtype="bf16")
    from omegaconf import OmegaConf

    from mpm_framework.stacks.text import TextStack
    from mpm_framework.training.lora import apply_lora

    lora = OmegaConf.create({"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["q_proj"], "components": ["llm"]})
    with pytest.raises(ConfigError, match=r"run\.lora trains float weights.*model\.llm\.quantize=none"):
        apply_lora(TextStack(_llama(llama_dir, quantize="int8")), lora)
    with pytest.raises(ConfigError, match="int8"):
        _llama(llama_dir, quantize="int4")
