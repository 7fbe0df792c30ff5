"""The CPM-Bee model against an independent, loop-based transcription of the
official forward pass, plus checkpoint round trips and cached decoding."""

import math

import pytest
import torch
from mpm_llm_cpm_bee.checkpoint import CheckpointError, convert, load_checkpoint
from mpm_llm_cpm_bee.config import ARCHS, CPMBeeLLMConfig
from mpm_llm_cpm_bee.model import CPMBeeModel
from mpm_llm_cpm_bee.pivot import CPMBeeLLM
from mpm_llm_cpm_bee.sizing import memory_estimate, parameter_count
from mpm_llm_cpm_bee.testing import save_official, tiny_cpm_bee
from torch.nn import functional as F

from mpm_framework.contracts.prompt import IGNORE_INDEX, Turn
from mpm_framework.errors import ConfigError

PRUNED = {"num_layers": 3, "mask_modules": [[False, False], [True, False], [False, True]]}


# -- an independent reference: the official forward, written out step by step ----
def _bucket(relative: int, num_buckets: int = 256, max_distance: int = 2048) -> int:
    half = num_buckets // 2
    out = half if relative > 0 else 0
    distance = abs(relative)
    exact = half // 2
    if distance < exact:
        return out + distance
    return out + min(half - 1, exact + int(math.log(distance / exact) / math.log(max_distance / exact)
                                            * (half - exact)))


def _embed(table, ids, sub):
    d = table.shape[1]
    x = table[ids] / math.sqrt(d)
    inv = 1.0 / 10000 ** (torch.arange(0, d, 2).float() / d)
    theta = sub.float()[..., None] * 16 * inv
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * theta.cos() - x2 * theta.sin(), x2 * theta.cos() + x1 * theta.sin()], -1)


def _rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w


_LAYOUTS: dict = {}


def reference_layout(b):
    """(bias-table rows, attention mask) for a right-padded batch, one (q, k) at a time."""
    key = tuple(b[k].numpy().tobytes() for k in sorted(b))
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    B, T = b["input_ids"].shape
    length = b["attention_mask"].sum(1)
    rows = torch.zeros(B, T, T, dtype=torch.long)
    mask = torch.zeros(B, T, T, dtype=torch.bool)
    seg, nseg, off = b["segment"], b["num_segments"], b["segment_rel_offset"]
    sample, span, ctx = b["sample_ids"], b["span"], b["context"]
    for i in range(B):
        for q in range(T):
            for k in range(T):
                together = bool(sample[i, q] == sample[i, k] and span[i, q] == span[i, k])
                rel = int(b["segment_rel"][i, seg[i, q] * nseg[i, q] + seg[i, k] + off[i, q]]) if together else 1
                rows[i, q, k] = _bucket(k - q) if rel == 0 else 256 + rel - 1
                visible = bool(ctx[i, k]) or (not bool(ctx[i, q]) and k <= q)
                visible = visible and (int(sample[i, q]) == 0 or together) and bool(span[i, q] == span[i, k])
                mask[i, q, k] = visible and q < length[i] and k < length[i]
    _LAYOUTS[key] = rows, mask
    return rows, mask


def reference_logits(state, arch, b):
    """Right-padded batch -> logits, following the official ``CPMBeeTorch.forward``."""
    ids, sub = b["input_ids"], b["input_sub"]
    B, T = ids.shape
    d, H, dh = arch.dim_model, arch.num_heads, arch.dim_head
    rows, mask = reference_layout(b)
    bias = state["position_bias.relative_attention_bias"][rows].permute(0, 3, 1, 2)
    x = _embed(state["input_embedding.weight"], ids, sub)
    for layer in range(arch.num_layers):
        p = f"encoder.layers.{layer}."
        if arch.has_attention(layer):
            h = _rms(x, state[p + "self_att.layernorm_before_attention.weight"])
            a = p + "self_att.self_attention."

            def proj(name, h=h, a=a):
                return (h @ state[a + name + ".weight"].T / math.sqrt(d)).view(B, T, H, dh).transpose(1, 2)

            q, k, v = proj("project_q") / dh**0.25, proj("project_k") / dh**0.25, proj("project_v")
            score = (q @ k.transpose(-1, -2) + bias).masked_fill(~mask[:, None], float("-inf"))
            prob = torch.nan_to_num(score.softmax(-1)).masked_fill(~mask[:, None], 0.0)
            out = (prob @ v).transpose(1, 2).reshape(B, T, H * dh)
            x = (x + out @ state[a + "attention_out.weight"].T / math.sqrt(H * dh)) / 1.05
        if arch.has_ffn(layer):
            h = _rms(x, state[p + "ffn.layernorm_before_ffn.weight"])
            f = p + "ffn.ffn."
            gate = F.gelu(h @ state[f + "w_in.w_0.weight"].T / math.sqrt(d)) * (
                h @ state[f + "w_in.w_1.weight"].T / math.sqrt(d))
            x = (x + gate @ state[f + "w_out.weight"].T / math.sqrt(arch.dim_ff)) / 1.05
    x = _rms(x, state["encoder.output_layernorm.weight"])
    ext = _embed(state["input_embedding.weight"], b["ext_table_ids"][0], b["ext_table_sub"][0])
    return torch.cat([x / math.sqrt(d) @ state["input_embedding.weight"].T, x @ ext.T], -1)


CONVERSATIONS = [
    [Turn("user", "<image>\nWhat is in the picture? 😀 and 🎉 <mask_2>"), Turn("assistant", "A red circle 🙂.")],
    [Turn("user", "图片中有什么？"), Turn("assistant", "红色的圆形。")],
]


def _batch(model, padding_side="right"):
    return model.collate([model.format_prompt(c, num_image_tokens=3) for c in CONVERSATIONS], padding_side)


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@pytest.mark.parametrize("arch", [{}, PRUNED], ids=["full", "pruned"])
def test_forward_matches_official_reference(vocab_file, backend, arch):
    model = tiny_cpm_bee(vocab_file, attention=backend, arch=arch).eval()
    batch = _batch(model)
    assert batch["ext_table_ids"].shape[1] >= 2  # 🎉 and 🙂 are <unk> variants 1 and 2
    with torch.no_grad():
        got = model(model.embed_tokens(batch["input_ids"]), batch).logits
    want = reference_logits(model.state_dict(), model.arch, batch)
    valid = batch["attention_mask"].bool()
    assert got.shape == want.shape == (*batch["input_ids"].shape, model.vocab_size + batch["ext_table_ids"].shape[1])
    torch.testing.assert_close(got[valid], want[valid], atol=2e-4, rtol=1e-4)


def test_loss_is_the_label_tokens_cross_entropy(tiny):
    batch = _batch(tiny)
    embeds = tiny.embed_tokens(batch["input_ids"])
    with torch.no_grad():
        full = tiny(embeds, batch).logits
        out = tiny(embeds, batch, labels=batch["labels"])
    target = batch["labels"][:, 1:]
    expected = F.cross_entropy(full[:, :-1].reshape(-1, full.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX)
    assert out.logits is None and out.num_label_tokens == int((target != IGNORE_INDEX).sum())
    torch.testing.assert_close(out.loss, expected)
    # The 🙂 in the first answer is an extension-token label (vocab size + ext index).
    assert int(batch["labels"].max()) >= tiny.vocab_size


def test_checkpoint_round_trips(tmp_path, vocab_file):
    model = tiny_cpm_bee(vocab_file, arch=PRUNED).eval()
    batch = _batch(model)
    with torch.no_grad():
        want = model(model.embed_tokens(batch["input_ids"]), batch).logits

    def logits_of(path, **kw):
        loaded = CPMBeeLLM.from_pretrained(path, **kw).eval()
        assert loaded.arch == model.arch
        assert all(p.requires_grad and p.dtype == torch.float32 for p in loaded.parameters())
        with torch.no_grad():
            return loaded(loaded.embed_tokens(batch["input_ids"]), batch).logits

    official = tmp_path / "official"
    official.mkdir()
    save_official(model, official / "cpm-bee-tiny.pt")
    (official / "vocab.txt").write_bytes(vocab_file.read_bytes())
    viscpm = tmp_path / "viscpm.pt"  # the LLM under llm., next to vision weights
    save_official(model, viscpm, prefix="llm.", extra={"vpm.beit3.text_embed.weight": torch.zeros(3, 2),
                                                        "query": torch.zeros(2, 2)})
    converted = tmp_path / "converted"
    assert convert(viscpm, converted, vocab=vocab_file).name == "model.safetensors"
    saved = tmp_path / "saved"
    model.save_pretrained(saved)
    for path, kw in ((official, {}), (viscpm, {"vocab": str(vocab_file)}), (converted, {}), (saved, {})):
        torch.testing.assert_close(logits_of(path, **kw), want, atol=0, rtol=0)
    # bf16 conversion keeps the layout; the loaded model runs in the configured dtype.
    convert(official / "cpm-bee-tiny.pt", tmp_path / "bf16", dtype="bf16")
    state, _ = load_checkpoint(tmp_path / "bf16")
    assert state["input_embedding.weight"].dtype == torch.bfloat16
    assert (tmp_path / "bf16" / "vocab.txt").is_file() and (tmp_path / "bf16" / "config.json").is_file()


def test_missing_and_unexpected_keys_are_listed(tmp_path, tiny):
    state = {k: v for k, v in tiny.state_dict().items() if k != "encoder.layers.1.ffn.ffn.w_out.weight"}
    state["encoder.layers.0.ffn.ffn.w_extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "broken.pt", arch=tiny.arch)
    message = str(err.value)
    assert "1 missing key(s): encoder.layers.1.ffn.ffn.w_out.weight" in message
    assert "1 unexpected key(s): encoder.layers.0.ffn.ffn.w_extra.weight" in message
    with pytest.raises(CheckpointError, match=r"lacks input_embedding\.weight"):
        torch.save({"foo": torch.zeros(1)}, tmp_path / "foreign.pt")
        load_checkpoint(tmp_path / "foreign.pt")


def test_pickled_code_is_refused(tmp_path):
    torch.save({"input_embedding.weight": torch.zeros(2, 2), "hook": Turn("user", "x")}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(tmp_path / "evil.pt")


def test_incremental_decoding_equals_full_recomputation(tiny):
    answers = [tiny.format_prompt(c, num_image_tokens=3) for c in CONVERSATIONS]
    prompts = [tiny.format_prompt(c[:1], num_image_tokens=3, add_generation_prompt=True) for c in CONVERSATIONS]
    batch = tiny.collate(prompts, padding_side="left")
    logits, state = tiny.prefill(tiny.embed_tokens(batch["input_ids"]), batch)
    # Full recomputation of each training row: the logits at the answer's <s> + j
    # predict answer token j.
    full, starts, tokens = [], [], []
    for prompt, enc in zip(prompts, answers):
        one = tiny.collate([enc])
        with torch.no_grad():
            full.append(tiny(tiny.embed_tokens(one["input_ids"]), one).logits[0, :, : tiny.vocab_size])
        starts.append(len(prompt) - 1)
        tokens.append(enc.input_ids[len(prompt):])
    steps = min(len(t) for t in tokens)
    keep = [i for i in range(tiny.vocab_size) if i != tiny.tokenizer.unk_id]
    for step in range(steps):
        for row in range(2):
            torch.testing.assert_close(logits[row, keep], full[row][starts[row] + step, keep], atol=1e-4, rtol=1e-4)
        if step == 1:  # beam-search style reordering swaps the rows and their caches
            state = tiny.reorder_state(state, torch.tensor([1, 0]))
            state = tiny.reorder_state(state, torch.tensor([1, 0]))
        logits, state = tiny.decode(torch.tensor([tokens[0][step], tokens[1][step]]), state)
    assert torch.isinf(logits[:, tiny.tokenizer.unk_id]).all()


def test_reorder_state_selects_rows(tiny):
    prompts = [tiny.format_prompt(c[:1], 3, add_generation_prompt=True) for c in CONVERSATIONS]
    batch = tiny.collate(prompts, padding_side="left")
    _, state = tiny.prefill(tiny.embed_tokens(batch["input_ids"]), batch)
    beams = tiny.reorder_state(state, torch.tensor([1, 1, 0]))
    step, _ = tiny.decode(torch.tensor([9, 9, 9]), beams)
    ref, _ = tiny.decode(torch.tensor([9, 9]), state)
    torch.testing.assert_close(step, ref[[1, 1, 0]])
    with pytest.raises(ValueError, match="left padding"):
        right = tiny.collate(prompts, padding_side="right")
        tiny.prefill(tiny.embed_tokens(right["input_ids"]), right)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_precision(vocab_file, tiny, dtype):
    half = tiny_cpm_bee(vocab_file, dtype=dtype).eval()
    assert half.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    batch = _batch(tiny)
    with torch.no_grad():
        ref = tiny(tiny.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"]).loss
        out = half(half.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"]).loss
    assert torch.isfinite(out) and abs(float(out) - float(ref)) < 0.05
    prompts = tiny.collate([tiny.format_prompt(CONVERSATIONS[1][:1], 0, True)], padding_side="left")
    logits, _ = half.prefill(half.embed_tokens(prompts["input_ids"]), prompts)
    assert logits.dtype == torch.float32


def test_gradient_checkpointing_gives_the_same_gradients(vocab_file):
    grads = []
    for checkpointing in (False, True):
        model = tiny_cpm_bee(vocab_file, gradient_checkpointing=checkpointing).train()
        batch = _batch(model)
        model(model.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"]).loss.backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 5
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key], atol=1e-5, rtol=1e-4)


def test_packing_keeps_samples_apart(tiny):
    encs = [tiny.format_prompt(c, num_image_tokens=3) for c in CONVERSATIONS]
    packed = tiny.pack_sequences(encs, max_length=sum(len(e) for e in encs))
    assert len(packed) == 1 and packed[0].extra["span"][-1] == 1
    with torch.no_grad():
        one = tiny.collate(packed)
        out = tiny(tiny.embed_tokens(one["input_ids"]), one, labels=one["labels"])
        sep = tiny.collate(encs)
        ref = tiny(tiny.embed_tokens(sep["input_ids"]), sep, labels=sep["labels"])
    assert out.num_label_tokens == ref.num_label_tokens
    torch.testing.assert_close(out.loss, ref.loss, atol=1e-5, rtol=1e-5)
    assert len(tiny.pack_sequences(encs, max_length=len(encs[0]))) == 2


def test_synthetic_batch_runs(tiny):
    batch = tiny.synthetic_batch(2, 24, num_image_tokens=4, answer_len=6)
    out = tiny(tiny.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"])
    assert out.num_label_tokens == 2 * 6 and torch.isfinite(out.loss)


def test_parameter_count_is_the_module_count_for_every_size():
    for size, arch in ARCHS.items():
        arch = arch.replace(vocab_size=arch.vocab_size or 1000)
        with torch.device("meta"):
            model = CPMBeeModel(arch)
        assert parameter_count(arch)["total"] == sum(p.numel() for p in model.parameters()), size
    estimate = memory_estimate("10b")
    assert estimate.parameters == parameter_count(ARCHS["10b"])["total"]
    assert estimate.weights_bf16_gib == estimate.weights_fp16_gib == pytest.approx(2 * estimate.parameters / 2**30)
    assert len(ARCHS["5b"].attention_layers) == 19 and len(ARCHS["5b"].ffn_layers) == 24


def test_big_sizes_need_weights_and_vocab(vocab_file):
    with pytest.raises(ConfigError, match="needs its vocabulary"):
        CPMBeeLLM.from_config(CPMBeeLLMConfig(size="10b"))
    with pytest.raises(ConfigError, match="needs its weights"):
        CPMBeeLLM.from_config(CPMBeeLLMConfig(size="10b", vocab=str(vocab_file)))
    with pytest.raises(ConfigError, match="unknown CPM-Bee size '10x'"):
        CPMBeeLLM.from_config(CPMBeeLLMConfig(size="10x"))
