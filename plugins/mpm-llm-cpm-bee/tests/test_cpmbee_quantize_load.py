"""CPM-Bee from a checkpoint: read as the configured dtype (one copy), and
``model.llm.quantize=int8`` (its ScaledLinear layers become int8 linear layers
with the scale folded in). Parity with fp32 within the stated tolerance:
logits cosine mean >= 0.995, argmax agreement >= 0.85 (random model, width 256:
near-flat logits make argmax ties common)."""

import torch


def _batch(model):
    from mpm_framework.contracts.prompt import Turn

    enc = model.format_prompt([Turn("user", "hello there, how are you"), Turn("assistant", "fine thanks")])
    return model.collate([enc])


def test_int8_matches_fp32_and_bf16_reads_converted(vocab_file, tmp_path):
    from mpm_llm_cpm_bee.pivot import CPMBeeLLM
    from mpm_llm_cpm_bee.testing import tiny_cpm_bee

    from mpm_framework.quantize import is_quantized

    source = tiny_cpm_bee(vocab_file, arch={"dim_model": 256, "dim_ff": 512, "num_layers": 3, "num_heads": 4,
                                            "dim_head": 64}).eval()
    source.save_pretrained(tmp_path / "saved")
    fp32 = CPMBeeLLM.from_pretrained(tmp_path / "saved").eval()
    int8 = CPMBeeLLM.from_pretrained(tmp_path / "saved", quantize="int8").eval()
    assert is_quantized(int8) and not is_quantized(fp32)
    batch = _batch(fp32)
    with torch.no_grad():
        a = fp32(fp32.embed_tokens(batch["input_ids"]), batch).logits
        b = int8(int8.embed_tokens(batch["input_ids"]), batch).logits
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    agree = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
    print("cpm-bee int8: cosine mean", cos.mean().item(), "min", cos.min().item(), "argmax", agree)
    assert cos.mean() >= 0.995 and agree >= 0.85  # measured 0.9969 and 0.89 (25 of 28 positions)

    bf16 = CPMBeeLLM.from_pretrained(tmp_path / "saved", dtype="bf16")
    for name, p in bf16.state_dict().items():
        expected = source.state_dict()[name]
        expected = expected.to(torch.bfloat16) if expected.is_floating_point() else expected
        assert p.dtype == expected.dtype and torch.equal(p, expected), name
