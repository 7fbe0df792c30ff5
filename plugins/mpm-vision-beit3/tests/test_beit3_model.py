"""BEiT-3 forward passes against a functional re-statement of the reference
computation (REFERENCE.md / torchscale), written straight from the state dict."""

import pytest
import torch
from torch.nn import functional as F

from mpm_framework.composition import component_config
from mpm_framework.errors import ConfigError, MPMError

EPS = 1e-5


def _reference(sd, x, split, heads, padding=None):
    """torchscale's Encoder on token embeddings ``x``: tokens before ``split``
    take the A weights, the rest B; positions count from row 2 per expert."""
    T, layers = x.shape[1], 1 + max(int(k.split(".")[3]) for k in sd if ".layers." in k)

    def multiway(prefix, fn, h):
        parts = []
        if split > 0:
            parts.append(fn(prefix + ".A", h[:, :split]))
        if split < T:
            parts.append(fn(prefix + ".B", h[:, split:]))
        return torch.cat(parts, 1)

    def ln(p, h):
        return F.layer_norm(h, (h.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], EPS)

    def lin(p, h):
        return F.linear(h, sd[p + ".weight"], sd[p + ".bias"])

    def ffn(p, h):
        return lin(p + ".fc2", ln(p + ".ffn_layernorm", F.gelu(lin(p + ".fc1", h))))

    pos = []
    if split > 0:
        pos.append(sd["beit3.encoder.embed_positions.A.weight"][2 : 2 + split])
    if split < T:
        pos.append(sd["beit3.encoder.embed_positions.B.weight"][2 : 2 + T - split])
    x = x + torch.cat(pos)
    if padding is not None:
        x = x * (1 - padding[..., None].float())
    B, D = x.shape[0], x.shape[2]
    hd = D // heads
    for i in range(layers):
        p = f"beit3.encoder.layers.{i}."
        h = multiway(p + "self_attn_layer_norm", ln, x)
        q = multiway(p + "self_attn.q_proj", lin, h) * hd**-0.5
        k = multiway(p + "self_attn.k_proj", lin, h)
        v = multiway(p + "self_attn.v_proj", lin, h)
        q, k, v = (t.view(B, T, heads, hd).transpose(1, 2) for t in (q, k, v))
        w = q @ k.transpose(-1, -2)
        if padding is not None:
            w = w.masked_fill(padding[:, None, None, :], float("-inf"))
        o = (torch.softmax(w.float(), -1) @ v).transpose(1, 2).reshape(B, T, D)
        o = multiway(p + "self_attn.out_proj", lin, multiway(p + "self_attn.inner_attn_ln", ln, o))
        x = x + o
        x = x + multiway(p + "ffn", ffn, multiway(p + "final_layer_norm", ln, x))
    return multiway("beit3.encoder.layer_norm", ln, x)


def _image_tokens(sd, pixels, patch):
    x = F.conv2d(pixels, sd["beit3.vision_embed.proj.weight"], sd["beit3.vision_embed.proj.bias"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    return torch.cat([sd["beit3.vision_embed.cls_token"].expand(x.shape[0], -1, -1), x], 1)


@pytest.fixture
def model(make_beit3, perturbed):
    return perturbed(make_beit3()).eval()


def test_vision_only_matches_reference(model):
    sd, pixels = model.state_dict(), torch.randn(2, 3, 32, 32)
    out = model.beit3(visual_tokens=pixels)
    assert out["multiway_split_position"] == -1 and out["encoder_out"].shape == (2, 17, 32)
    ref = _reference(sd, _image_tokens(sd, pixels, 8), 17, heads=4)
    torch.testing.assert_close(out["encoder_out"], ref, atol=1e-5, rtol=1e-5)


def test_text_only_with_padding_matches_reference(model):
    sd = model.state_dict()
    ids = torch.randint(0, 64, (2, 9))
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[1, 6:] = True
    out = model.beit3(textual_tokens=ids, text_padding_position=pad)["encoder_out"]
    ref = _reference(sd, F.embedding(ids, sd["beit3.text_embed.weight"]), 0, heads=4, padding=pad)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # padded tokens are invisible: the unpadded prefix of row 1 alone gives the same outputs
    alone = model.beit3(textual_tokens=ids[1:, :6])["encoder_out"]
    torch.testing.assert_close(out[1:, :6], alone, atol=1e-5, rtol=1e-5)


def test_mixed_input_matches_reference_and_restarts_text_positions(model):
    sd, pixels = model.state_dict(), torch.randn(2, 3, 32, 32)
    ids = torch.randint(0, 64, (2, 5))
    out = model.beit3(textual_tokens=ids, visual_tokens=pixels)
    assert out["multiway_split_position"] == 17
    x = torch.cat([_image_tokens(sd, pixels, 8), F.embedding(ids, sd["beit3.text_embed.weight"])], 1)
    torch.testing.assert_close(out["encoder_out"], _reference(sd, x, 17, heads=4), atol=1e-5, rtol=1e-5)


def test_experts_are_routed_by_position(model):
    pixels, ids = torch.randn(1, 3, 32, 32), torch.randint(0, 64, (1, 4))
    vision, text = model.beit3(visual_tokens=pixels)["encoder_out"], model.beit3(textual_tokens=ids)["encoder_out"]
    with torch.no_grad():  # scramble every language-expert weight
        for name, p in model.named_parameters():
            if ".B." in name:
                p.mul_(-3.0)
    torch.testing.assert_close(model.beit3(visual_tokens=pixels)["encoder_out"], vision)
    assert not torch.allclose(model.beit3(textual_tokens=ids)["encoder_out"], text)


def test_query_path_returns_exactly_num_queries_tokens(model):
    sd, pixels = model.state_dict(), torch.randn(3, 3, 32, 32)
    out = model(pixels)
    assert out.shape == (3, 6, 40) and model.num_output_tokens == 6 and model.output_dim == 40
    assert model.owns_bridge
    # VisCPM: [CLS, patches, queries] with the split after the image tokens
    x = torch.cat([_image_tokens(sd, pixels, 8), sd["query"].expand(3, -1, -1)], 1)
    hidden = _reference(sd, x, 17, heads=4)[:, 17:]
    mapped = F.linear(F.gelu(F.linear(hidden, sd["mapping.0.weight"], sd["mapping.0.bias"])),
                      sd["mapping.2.weight"], sd["mapping.2.bias"])
    torch.testing.assert_close(out, mapped, atol=1e-5, rtol=1e-5)


def test_without_bridge_all_image_tokens_come_back(make_beit3):
    enc = make_beit3(num_queries=0, mapping=False)
    out = enc(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 17, 32) and enc.num_output_tokens == 17 and not enc.owns_bridge
    no_map = make_beit3(mapping=False)
    assert no_map(torch.randn(1, 3, 32, 32)).shape == (1, 6, 32) and no_map.output_dim == 32


def test_queries_initialised_from_text_embeddings(make_beit3):
    enc = make_beit3(num_queries=64, preset="tiny", hidden_size=64, num_heads=4)
    text = enc.beit3.text_embed.weight
    assert torch.equal(enc.query[0], text[0]) and torch.equal(enc.query[-1], text[2])
    middle = enc.query[1:-1]
    assert middle.abs().max() <= 2.0 and 0.015 < middle.std() < 0.025


def _apply_freeze_sets(enc):
    """VisCPM's policy through the core's freeze sets, as the stages apply it."""
    from mpm_framework.stacks.trainable import apply_freeze_sets

    trainable, frozen = enc.freeze_sets()
    return apply_freeze_sets({"vision": enc}, [f"vision.{g}" for g in trainable], [f"vision.{g}" for g in frozen])


def test_gradient_reaches_queries_not_frozen_patch_embedding(make_beit3):
    enc = make_beit3()
    trainable, total = _apply_freeze_sets(enc)["vision"]
    assert 0 < trainable < total
    enc(torch.randn(2, 3, 32, 32)).pow(2).mean().backward()
    assert enc.query.grad is not None and enc.query.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.mapping.parameters())
    assert all(p.grad is None for p in enc.beit3.vision_embed.parameters())
    b_grads = [p.grad for n, p in enc.named_parameters() if ".B." in n and "layer_norm.B" not in n]
    assert all(g is not None for g in b_grads)
    assert all(p.grad is None for n, p in enc.named_parameters() if ".A." in n)
    assert enc.beit3.text_embed.weight.grad is None


def test_freeze_flags(make_beit3):
    enc = make_beit3(train_vision_expert=True, freeze_patch_embed=False)
    trainable, frozen = enc.freeze_sets()
    assert {"vision_expert", "patch_embed", "queries", "mapping", "language_expert"} <= set(trainable)
    assert frozen == []
    _apply_freeze_sets(enc)
    assert enc.beit3.vision_embed.proj.weight.requires_grad
    assert enc.beit3.encoder.layers[0].ffn.A.fc1.weight.requires_grad


def test_sdpa_and_eager_agree(make_beit3, perturbed):
    a = perturbed(make_beit3(attention="sdpa")).eval()
    b = make_beit3(attention="eager").eval()
    b.load_state_dict(a.state_dict())
    pixels = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(a(pixels), b(pixels), atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients(make_beit3):
    a, b = make_beit3(), make_beit3()
    b.enable_gradient_checkpointing()
    pixels = torch.randn(2, 3, 32, 32)
    for m in (a, b):
        m.train()
        m(pixels).sum().backward()
    torch.testing.assert_close(a.query.grad, b.query.grad, atol=1e-6, rtol=1e-5)


def test_user_errors_are_clear(make_beit3):
    enc = make_beit3()
    with pytest.raises(MPMError, match="32x32"):
        enc(torch.randn(1, 3, 64, 64))
    with pytest.raises(ConfigError, match="Did you mean 'tiny'"):
        make_beit3(preset="tinny")
    with pytest.raises(ConfigError, match="LLM width"):
        make_beit3(mapping_dim=None)
    with pytest.raises(MPMError, match="position table"):
        enc.beit3(textual_tokens=torch.zeros(1, 70, dtype=torch.long))


def test_presets_have_the_published_sizes():
    from mpm_vision_beit3.config import PRESETS

    base, large = PRESETS["base"], PRESETS["large"]
    assert (base.hidden_size, base.num_layers, base.num_heads, base.ffn_size) == (768, 12, 12, 3072)
    assert (large.hidden_size, large.num_layers, large.num_heads, large.ffn_size) == (1024, 24, 16, 4096)
    assert large.num_image_tokens == 197 and large.vocab_size == 64010


@pytest.mark.parametrize("preset, published", [("base", 276e6), ("large", 746e6)])
def test_parameter_counts_match_the_paper(preset, published):
    """The paper's 276M / 746M include the pretraining heads (text MLM head
    d x 64010, image MIM head d x 8192 + bias); the backbone plus those must
    land on the published count. Built on the meta device: nothing allocated."""
    from mpm_vision_beit3.config import Beit3Config
    from mpm_vision_beit3.encoder import Beit3Encoder

    from mpm_framework.contracts.base import BuildContext

    with torch.device("meta"):
        enc = Beit3Encoder.from_config(Beit3Config(preset=preset, num_queries=0, mapping=False), BuildContext(meta=True))
    d = enc.hidden_size
    n = sum(p.numel() for p in enc.parameters()) + d * 64010 + d * 8192 + 8192
    assert abs(n - published) < 1e6, n


def test_bf16_stays_close_to_fp32(make_beit3):
    full = make_beit3().eval()
    half = make_beit3(dtype="bf16").eval()
    assert half.query.dtype == torch.bfloat16
    pixels = torch.randn(2, 3, 32, 32)
    out = half(pixels)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), full(pixels), atol=0.1, rtol=0.05)
    with pytest.raises(ConfigError, match="Did you mean 'fp16'"):  # a Literal choice: checked at resolve time
        component_config("vision", "beit3", ["preset=tiny", "dtype=fp61"])


@pytest.mark.gpu
def test_fp16_on_cuda_matches_fp32(make_beit3):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    full = make_beit3().eval()
    half = make_beit3(dtype="fp16").eval().cuda()
    pixels = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(half(pixels.cuda()).float().cpu(), full(pixels), atol=2e-2, rtol=2e-2)
