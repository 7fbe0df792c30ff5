"""The unet decoder on tiny random configs: loss, guidance, seeds, groups, config errors."""

import subprocess
import sys

import pytest
import torch
from mpm_paint_unet.config import UNetDecoderConfig
from mpm_paint_unet.decoder import UNetDecoder

from mpm_framework.contracts.base import BuildContext
from mpm_framework.errors import ConfigError

LLM_DIM = 24


def make_decoder(**overrides) -> UNetDecoder:
    base = {"image_size": 16, "block_out_channels": [16, 32], "cross_attention_dim": 32,
            "norm_num_groups": 8, "attention_head_dim": 8}
    if overrides.get("space") == "latent":
        base.update(vae_block_out_channels=[16, 16], image_size=16)
    cfg = UNetDecoderConfig(**{**base, **overrides})
    return UNetDecoder.from_config(cfg, BuildContext(llm_hidden_size=LLM_DIM))


def fixed_batch(decoder: UNetDecoder, batch: int = 4, tokens: int = 6):
    g = torch.Generator().manual_seed(1)
    size = decoder.image_size
    # Smooth images (a blob per row) rather than white noise: learnable structure.
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centres = torch.rand(batch, 2, generator=g) - 0.5
    blob = torch.exp(-((xx - centres[:, 0, None, None]) ** 2 + (yy - centres[:, 1, None, None]) ** 2) / 0.1)
    images = (blob[:, None].repeat(1, 3, 1, 1) * torch.rand(batch, 3, 1, 1, generator=g)) * 2 - 1
    cond = torch.randn(batch, tokens, LLM_DIM, generator=g)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[0, 4:] = 0
    return images, cond, mask


@pytest.mark.parametrize(
    "space,trainable",
    [("pixel", "adapter+cross_attention"), ("pixel", "all"), ("latent", "all"), ("pixel", "adapter")],
)
def test_training_steps_lower_the_loss_on_a_fixed_batch(space, trainable):
    torch.manual_seed(0)
    decoder = make_decoder(space=space, trainable=trainable, adapter_dropout=0.0)
    groups = decoder.trainable_groups()
    decoder.requires_grad_(False)
    for group in decoder.default_trainable():
        for name, p in decoder.named_parameters():
            if any(name.startswith(prefix) for prefix in groups[group.split(".", 1)[1]]):
                p.requires_grad_(True)
    frozen_before = {n: p.clone() for n, p in decoder.named_parameters() if not p.requires_grad}
    images, cond, mask = fixed_batch(decoder)
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(decoder.to_model_space(images).shape, generator=g)
    t = torch.tensor([50, 300, 600, 900])

    def fixed_loss() -> float:
        decoder.eval()
        with torch.no_grad():
            torch.manual_seed(3)  # the VAE posterior sample in latent space
            return float(decoder.training_loss(images, cond, mask, noise=noise, timesteps=t))

    before = fixed_loss()
    opt = torch.optim.AdamW([p for p in decoder.parameters() if p.requires_grad], lr=3e-3)
    decoder.train()
    for _ in range(8):
        torch.manual_seed(3)
        loss = decoder.training_loss(images, cond, mask, noise=noise, timesteps=t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    # Through a random UNet the prompt moves the prediction only a little, so
    # the adapter alone can win back less than the UNet's own weights.
    assert after < (0.99 if trainable == "adapter" else 0.9) * before, (before, after)
    for name, p in decoder.named_parameters():
        if name in frozen_before:
            assert torch.equal(p, frozen_before[name]), f"frozen parameter {name} changed"


def test_random_timesteps_training_uses_the_ddpm_forward_process():
    decoder = make_decoder(adapter_dropout=0.0).eval()
    images, cond, mask = fixed_batch(decoder)
    noise = torch.randn_like(images)
    t = torch.tensor([10, 200, 500, 999])
    alphas = decoder.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = alphas.sqrt() * images + (1 - alphas).sqrt() * noise
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(decoder.denoise(noisy, t, decoder.condition(cond), mask), noise)
        got = decoder.training_loss(images, cond, mask, noise=noise, timesteps=t)
    torch.testing.assert_close(got, expected)


def test_v_prediction_regresses_the_velocity():
    decoder = make_decoder(prediction_type="v_prediction", adapter_dropout=0.0).eval()
    images, cond, mask = fixed_batch(decoder)
    noise = torch.randn_like(images)
    t = torch.tensor([10, 200, 500, 999])
    alphas = decoder.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = alphas.sqrt() * images + (1 - alphas).sqrt() * noise
    velocity = alphas.sqrt() * noise - (1 - alphas).sqrt() * images
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(decoder.denoise(noisy, t, decoder.condition(cond), mask), velocity)
        got = decoder.training_loss(images, cond, mask, noise=noise, timesteps=t)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("pooled", [False, True])
def test_guidance_one_equals_the_conditional_prediction(pooled):
    decoder = make_decoder(adapter_dropout=0.0, pooled_conditioning=pooled).eval()
    assert decoder.pooled_conditioning is pooled
    _, cond, mask = fixed_batch(decoder, batch=3, tokens=7)
    uncond = torch.randn(1, 2, LLM_DIM)  # shorter than the prompts: padding must not leak in
    uncond_mask = torch.ones(1, 2, dtype=torch.long)
    x = torch.randn(3, 3, 16, 16)
    t = torch.tensor(400)
    with torch.no_grad():
        c_states, u_states = decoder.condition(cond), decoder.condition(uncond)
        conditional = decoder.denoise(x, t, c_states, mask)
        unconditional = decoder.denoise(x, t, u_states.expand(3, -1, -1), uncond_mask.expand(3, -1))
        guided_1 = decoder.guided_prediction(x, t, c_states, mask, u_states, uncond_mask, 1.0)
        guided_4 = decoder.guided_prediction(x, t, c_states, mask, u_states, uncond_mask, 4.0)
    torch.testing.assert_close(guided_1, conditional, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(guided_4, unconditional + 4.0 * (conditional - unconditional), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(guided_4, conditional, atol=1e-3)


def test_sampling_at_guidance_one_is_the_conditional_model():
    decoder = make_decoder()
    _, cond, mask = fixed_batch(decoder, batch=2)
    uncond, uncond_mask = torch.randn(1, 3, LLM_DIM), torch.ones(1, 3, dtype=torch.long)

    def run(guidance, with_uncond=True):
        g = torch.Generator().manual_seed(5)
        u, um = (uncond, uncond_mask) if with_uncond else (None, None)
        return decoder.sample(cond, mask, u, um, guidance_scale=guidance, num_steps=3, generator=g)

    torch.testing.assert_close(run(1.0), run(1.0, with_uncond=False))
    assert not torch.allclose(run(5.0), run(1.0), atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "euler", "euler_ancestral", "dpmsolver"])
def test_the_same_seed_gives_the_same_image(sampler):
    decoder = make_decoder(scheduler=sampler)
    _, cond, mask = fixed_batch(decoder, batch=2)
    uncond, uncond_mask = torch.randn(1, 3, LLM_DIM), torch.ones(1, 3, dtype=torch.long)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return decoder.sample(cond, mask, uncond, uncond_mask, guidance_scale=3.0, num_steps=4, generator=g)

    a, b, c = run(7), run(7), run(8)
    assert a.shape == (2, 3, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert decoder.training is True  # sampling restores the mode it found


def test_per_row_generators_make_rows_independent_of_their_batch():
    decoder = make_decoder(scheduler="ddpm")  # stochastic steps draw noise too
    _, cond, mask = fixed_batch(decoder, batch=2)
    uncond, uncond_mask = torch.randn(1, 3, LLM_DIM), torch.ones(1, 3, dtype=torch.long)

    def gens(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    pair = decoder.sample(cond, mask, uncond, uncond_mask, 2.0, 3, generator=gens(11, 12))
    alone = decoder.sample(cond[1:], mask[1:], uncond, uncond_mask, 2.0, 3, generator=gens(12))
    torch.testing.assert_close(pair[1:], alone, atol=1e-4, rtol=1e-4)


def test_trainable_groups_name_the_cross_attention_blocks():
    decoder = make_decoder()
    groups = decoder.trainable_groups()
    assert set(groups) == {"adapter", "cross_attention", "unet"}  # no vae in pixel space
    cross = [n for n, _ in decoder.named_parameters() if any(n.startswith(p) for p in groups["cross_attention"])]
    assert cross and all(".attn2." in n for n in cross)
    assert {n for n, _ in decoder.named_parameters() if ".attn2." in n} == set(cross)
    assert "vae" in make_decoder(space="latent").trainable_groups()
    assert make_decoder(trainable="adapter").default_trainable() == ["decoder.adapter"]
    assert make_decoder(trainable="all").default_trainable() == ["decoder.adapter", "decoder.unet"]


def test_adapter_is_linear_without_bias_dropout_layernorm():
    decoder = make_decoder(adapter_dropout=0.25)
    adapter = decoder.adapter
    assert adapter.proj.bias is None and adapter.proj.in_features == LLM_DIM
    assert adapter.proj.out_features == decoder.unet.config.cross_attention_dim == 32
    assert adapter.dropout.p == 0.25
    adapter.eval()
    x = torch.randn(2, 3, LLM_DIM)
    expected = torch.nn.functional.layer_norm(x @ adapter.proj.weight.T, (32,), adapter.norm.weight, adapter.norm.bias)
    torch.testing.assert_close(adapter(x), expected)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"trainable": "adaptor"}, "Did you mean 'adapter'"),
        ({"scheduler": "eulr"}, "Did you mean 'euler'"),
        ({"space": "latnet"}, "Did you mean 'latent'"),
        ({"image_size": 17}, "divisible"),
        ({"block_kinds": ["cross"]}, "one kind"),
        ({"adapter_dropout": 1.5}, "adapter_dropout"),
    ],
)
def test_bad_config_values_are_clear_errors(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        make_decoder(**overrides)


def test_the_decoder_needs_the_llm_width():
    with pytest.raises(ConfigError, match="hidden size"):
        UNetDecoder.from_config(UNetDecoderConfig(), BuildContext())


def test_registration_and_config_import_no_torch():
    code = (
        "import sys, mpm_paint_unet.plugin, mpm_paint_unet.config; "
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compose_builds_a_paint_stack_with_the_unet(paint_components):
    from mpm_framework.composition import compose
    from mpm_framework.stacks.paint import PaintStack

    stack = compose(llm="tiny-llm", decoder="sd-unet", overrides=["model.decoder.image_size=16"])
    assert isinstance(stack, PaintStack) and isinstance(stack.decoder, UNetDecoder)
    assert stack.decoder.adapter.llm_dim == stack.llm.hidden_size
    assert stack.config.model.decoder.name == "unet"
    with pytest.raises(ConfigError, match=r"Did you mean 'model\.decoder\.scheduler'"):
        compose(llm="tiny-llm", decoder="unet", overrides=["model.decoder.schedular=ddpm"])


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "euler", "euler_ancestral", "dpmsolver"])
def test_every_sampler_recovers_the_image_from_an_oracle_noise_prediction(sampler):
    """With the true noise as the prediction, sampling must land on the clean
    image: checks timesteps, input scaling, guidance and the final decode."""
    decoder = make_decoder(scheduler=sampler)
    x0 = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    alphas = decoder.noise_scheduler.alphas_cumprod

    def oracle(x, t, states, mask):
        a = alphas[int(torch.as_tensor(t).round())]
        return (x - a.sqrt() * x0.repeat(x.shape[0] // 2, 1, 1, 1)) / (1 - a).sqrt()

    decoder.denoise = oracle
    _, cond, mask = fixed_batch(decoder, batch=2)
    out = decoder.sample(cond, mask, cond[:1, :2], mask[:1, :2], 3.0, 10, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_adapter_standardization_tracks_real_tokens_and_freezes_in_eval():
    decoder = make_decoder(adapter_standardize=True, adapter_dropout=0.0)
    adapter = decoder.adapter
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(3, 5, LLM_DIM, generator=g) * 4 + 2, torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]]))
               for _ in range(3)]
    adapter.train()
    for hidden, mask in batches:
        decoder.condition(hidden, mask)
    real = torch.cat([h[m.bool()] for h, m in batches])
    torch.testing.assert_close(adapter.input_mean, real.mean(0))
    torch.testing.assert_close(adapter.input_var, real.var(0, unbiased=False))
    assert int(adapter.input_count) == real.shape[0]
    adapter.eval()
    before = adapter.input_mean.clone()
    out = decoder.condition(*batches[0])
    assert torch.equal(adapter.input_mean, before)
    z = (batches[0][0] - real.mean(0)) / (real.var(0, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(out, adapter.norm(adapter.proj(z)))


def test_prompt_pooling_starts_as_the_masked_mean_and_ignores_padding():
    decoder = make_decoder(pooled_conditioning=True, pool_heads=3)
    pool = decoder.pool
    assert pool.output_dim == 3 * 32 == decoder.unet.config.projection_class_embeddings_input_dim
    assert "pool." in decoder.trainable_groups()["adapter"]
    states = torch.randn(2, 4, 32)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pooled = pool(states, mask).view(2, 3, 32)
    torch.testing.assert_close(pooled[0, 1], states[0, :2].mean(0))
    torch.testing.assert_close(pooled[1, 2], states[1].mean(0))
    with torch.no_grad():
        pool.queries.normal_()
    padded = torch.cat([states, torch.randn(2, 3, 32) * 100], 1)
    torch.testing.assert_close(pool(padded, torch.cat([mask, torch.zeros(2, 3, dtype=torch.long)], 1)),
                               pool(states, mask))
