"""Training-time behaviour: answer-only LM head, packing, gradient checkpointing,
dtypes, attention backends and parameter groups."""

from __future__ import annotations

import logging
import sys
import types

import pytest
import torch

from mpm_framework.composition import component_config
from mpm_framework.contracts.prompt import IGNORE_INDEX, Turn
from mpm_framework.errors import ConfigError

SAMPLES = [
    [Turn("user", "<image>\nWhat is in the image?"), Turn("assistant", "a red circle on the left")],
    [Turn("system", "Answer in German."), Turn("user", "What is at the top?"),
     Turn("assistant", "zwei blaue Quadrate oben")],
    [Turn("user", "中间有什么?"), Turn("assistant", "一个绿色的三角形"), Turn("user", "and?"),
     Turn("assistant", "nothing")],
]


def _llm(path, **options):
    from mpm_llm_llama.model import LlamaLLM

    return LlamaLLM.from_pretrained(path, **options)


def _batch(llm, samples=SAMPLES, n_image=3):
    return llm.collate([llm.format_prompt(s, n_image) for s in samples])


def _loss_and_grads(llm, batch):
    llm.zero_grad()
    out = llm(llm.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"])
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in llm.named_parameters() if p.grad is not None}
    return out, grads


def test_answer_only_head_gives_the_full_loss_and_gradients(llama_dir):
    full_llm = _llm(llama_dir, answer_only_head=False)
    fast_llm = _llm(llama_dir)
    batch = _batch(fast_llm)
    fast, fast_grads = _loss_and_grads(fast_llm, batch)
    full, full_grads = _loss_and_grads(full_llm, batch)
    assert fast.logits is None and full.logits is not None  # the fast path never built (B, T, V)
    assert fast.num_label_tokens == full.num_label_tokens == int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    torch.testing.assert_close(fast.loss, full.loss, rtol=0, atol=1e-6)
    assert fast_grads.keys() == full_grads.keys()
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], full_grads[name], rtol=1e-5, atol=1e-7)
    # and both equal transformers' own loss on the same labels
    with torch.no_grad():
        reference = full_llm.hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                labels=batch["labels"]).loss
    torch.testing.assert_close(fast.loss.detach(), reference, rtol=0, atol=1e-6)


def test_a_batch_without_answer_tokens_has_zero_loss_and_a_graph(llama_dir):
    llm = _llm(llama_dir)
    batch = llm.collate([llm.format_prompt([Turn("user", "hi")])])
    out = llm(llm.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"])
    assert out.num_label_tokens == 0 and out.loss.item() == 0.0
    out.loss.backward()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("name,fixture", [("llama", "llama_dir"), ("hf-causal-lm", "qwen2_dir")])
def test_packed_loss_equals_the_token_weighted_unpacked_loss(attn, name, fixture, request):
    from mpm_llm_llama.model import HFCausalLM, LlamaLLM

    cls = LlamaLLM if name == "llama" else HFCausalLM
    llm = cls.from_pretrained(request.getfixturevalue(fixture), attn_implementation=attn).eval()
    assert llm.supports_packing
    encodings = [llm.format_prompt(s, 2) for s in SAMPLES] + [llm.encode_text("ein roter Kreis links")]
    lengths = [len(e) for e in encodings]
    packed = llm.pack_sequences(encodings, max_length=sum(lengths[:3]))
    assert len(packed) == 2 and [len(p) for p in packed] == [sum(lengths[:3]), lengths[3]]
    total, count = 0.0, 0
    with torch.no_grad():
        for enc in encodings:
            b = llm.collate([enc])
            out = llm(llm.embed_tokens(b["input_ids"]), b, labels=b["labels"])
            total += out.loss.item() * out.num_label_tokens
            count += out.num_label_tokens
        b = llm.collate(packed)  # the second row is right-padded
        assert set(b) >= {"position_ids", "sequence_ids"}
        out = llm(llm.embed_tokens(b["input_ids"]), b, labels=b["labels"])
    assert out.num_label_tokens == count
    assert out.loss.item() == pytest.approx(total / count, abs=1e-5)
    # without the block mask the samples would see each other: the loss changes
    leaky = {k: v for k, v in b.items() if k != "sequence_ids"}
    with torch.no_grad():
        leaked = llm(llm.embed_tokens(b["input_ids"]), leaky, labels=b["labels"]).loss.item()
    assert abs(leaked - total / count) > 1e-3


def test_gradient_checkpointing_keeps_loss_and_gradients(llama_dir):
    plain = _llm(llama_dir)
    ckpt = _llm(llama_dir, gradient_checkpointing=True)
    assert any(getattr(m, "gradient_checkpointing", False) for m in ckpt.hf.modules())
    ckpt.train()
    plain.train()
    batch = _batch(plain)
    a, grads_a = _loss_and_grads(plain, batch)
    b, grads_b = _loss_and_grads(ckpt, batch)
    torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=1e-6)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype,torch_dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_loads_and_trains(llama_dir, dtype, torch_dtype):
    llm = _llm(llama_dir, dtype=dtype)
    assert {p.dtype for p in llm.parameters()} == {torch_dtype}
    reference = _llm(llama_dir)
    batch = _batch(llm)
    out = llm(llm.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"])
    out.loss.backward()
    with torch.no_grad():
        ref = reference(reference.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"]).loss
    assert out.loss.dtype == torch.float32  # cross-entropy runs in fp32
    assert out.loss.item() == pytest.approx(ref.item(), rel=0.05)


def test_bad_dtype_and_backend_name_the_nearest_choice(llama_dir):
    with pytest.raises(ConfigError, match="Did you mean 'bf16'"):  # a Literal choice: checked at resolve time
        component_config("llm", "llama", [f"path={llama_dir}", "dtype=bf61"])
    with pytest.raises(ConfigError, match="Did you mean 'eager'"):
        _llm(llama_dir, attn_implementation="eagre")


def test_xformers_on_cpu_falls_back_to_sdpa_with_one_log_line(llama_dir, caplog):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the fallback is for CPU-only machines")
    with caplog.at_level(logging.WARNING, logger="mpm_llm_llama"):
        llm = _llm(llama_dir, attn_implementation="xformers")
    lines = [r for r in caplog.records if "xformers" in r.getMessage()]
    assert len(lines) == 1 and "sdpa" in lines[0].getMessage()
    assert llm.hf.config._attn_implementation == "sdpa"


def _fake_xformers(monkeypatch):
    """xformers has no CPU kernels, so its ``memory_efficient_attention`` is stood
    in for by a torch implementation of its documented contract (BMHK layout,
    additive bias or bottom-right causal mask). What is tested is the plugin's
    adapter around the kernel: layouts, GQA, masks, registration."""
    calls = []

    class LowerTriangularFromBottomRightMask:
        pass

    def memory_efficient_attention(q, k, v, attn_bias=None, p=0.0, scale=None):
        calls.append(type(attn_bias).__name__)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        mask, causal = None, False
        if isinstance(attn_bias, torch.Tensor):
            mask = attn_bias
        elif attn_bias is not None:
            lq, lk = q.shape[2], k.shape[2]
            mask = torch.ones(lq, lk, dtype=torch.bool).tril(lk - lq)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                                               dropout_p=p, scale=scale)
        return out.transpose(1, 2)

    ops = types.ModuleType("xformers.ops")
    ops.memory_efficient_attention = memory_efficient_attention
    ops.fmha = types.SimpleNamespace(attn_bias=types.SimpleNamespace(
        LowerTriangularFromBottomRightMask=LowerTriangularFromBottomRightMask))
    package = types.ModuleType("xformers")
    package.ops = ops
    monkeypatch.setitem(sys.modules, "xformers", package)
    monkeypatch.setitem(sys.modules, "xformers.ops", ops)
    return calls


def test_xformers_backend_matches_sdpa_with_a_stand_in_kernel(llama_dir, monkeypatch):
    from mpm_llm_llama import attention

    calls = _fake_xformers(monkeypatch)
    monkeypatch.setattr(attention, "_cuda_available", lambda: True)
    monkeypatch.setattr(attention, "_on_gpu", lambda tensor: True)
    xf = _llm(llama_dir, attn_implementation="xformers").eval()
    assert xf.hf.config._attn_implementation == "xformers"
    ref = _llm(llama_dir).eval()
    prompts = [xf.format_prompt(s[:1], 2, add_generation_prompt=True) for s in SAMPLES]
    with torch.no_grad():
        for side in ("right", "left"):
            batch = xf.collate(prompts, padding_side=side)
            a = xf(xf.embed_tokens(batch["input_ids"]), batch).logits
            b = ref(ref.embed_tokens(batch["input_ids"]), batch).logits
            real = batch["attention_mask"].bool()
            torch.testing.assert_close(a[real], b[real], rtol=0, atol=1e-5)
        single = xf.collate(prompts[:1])  # no padding: the causal-mask path
        a = xf(xf.embed_tokens(single["input_ids"]), single).logits
        b = ref(ref.embed_tokens(single["input_ids"]), single).logits
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
        logits, state = xf.prefill(xf.embed_tokens(batch["input_ids"]), batch)
        ref_logits, ref_state = ref.prefill(ref.embed_tokens(batch["input_ids"]), batch)
        torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-5)
        token = ref_logits.argmax(-1)
        torch.testing.assert_close(xf.decode(token, state)[0], ref.decode(token, ref_state)[0], rtol=0, atol=1e-5)
    assert "Tensor" in calls and "LowerTriangularFromBottomRightMask" in calls


def test_trainable_groups_partition_the_parameters(llama_dir):
    from mpm_framework.stacks.trainable import apply_freeze_sets

    llm = _llm(llama_dir)
    groups = llm.trainable_groups()
    assert set(groups) == {"embeddings", "layers", "lm_head"}
    names = [n for n, _ in llm.named_parameters()]
    listed = [n for g in groups.values() for n in g]
    assert sorted(listed) == sorted(names)  # every parameter in exactly one group
    counts = apply_freeze_sets({"llm": llm}, ["llm.lm_head"], [])
    head = llm.hf.get_output_embeddings().weight
    assert counts["llm"][0] == head.numel() and head.requires_grad
    assert not llm.hf.get_input_embeddings().weight.requires_grad


def test_tied_head_is_listed_under_the_embedding(qwen2_dir):
    from mpm_llm_llama.model import HFCausalLM

    llm = HFCausalLM.from_pretrained(qwen2_dir)
    groups = llm.trainable_groups()
    assert groups["lm_head"] == groups["embeddings"] == ["hf.model.embed_tokens.weight"]


def test_packing_keeps_sample_order_for_image_slots():
    """Images are stacked in sample order, so packed rows must keep that order:
    the k-th run of image slots in row-major order belongs to the k-th sample."""
    from mpm_framework.contracts.prompt import PromptEncoding
    from mpm_framework.training.packing import pack_in_order as pack_encodings

    lengths = [7, 3, 6, 2, 5]  # first-fit would move sample 1 (3) next to sample 0
    encodings = [PromptEncoding([100 + i] * n, [-100] * n, [True] + [False] * (n - 1))
                 for i, n in enumerate(lengths)]
    rows = pack_encodings(encodings, max_length=10)
    flat = [t for row in rows for t, slot in zip(row.input_ids, row.image_mask, strict=True) if slot]
    assert flat == [100, 101, 102, 103, 104]
    assert all(len(row) <= 10 for row in rows)
    assert [len(r) for r in rows] == [10, 8, 5]
