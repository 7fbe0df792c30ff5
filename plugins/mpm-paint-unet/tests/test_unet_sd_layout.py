"""Stable Diffusion-layout checkpoints: a tiny pipeline saved by diffusers loads
through the plugin with identical weights; MPM's own saves round-trip."""

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from mpm_paint_unet.config import UNetDecoderConfig
from mpm_paint_unet.decoder import UNetDecoder

from mpm_framework.contracts.base import BuildContext
from mpm_framework.errors import ConfigError

LLM_DIM = 24


def _tiny_clip_text(tmp: Path):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "red</w>": 3, "r": 4, "e": 5, "d</w>": 6, "re": 7}
    (tmp / "vocab.json").write_text(json.dumps(vocab))
    (tmp / "merges.txt").write_text("#version: 0.2\nr e\n")
    tokenizer = CLIPTokenizer(str(tmp / "vocab.json"), str(tmp / "merges.txt"))
    encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=16,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    return encoder, tokenizer


@pytest.fixture(scope="module")
def sd_checkpoint(tmp_path_factory):
    """A whole (tiny) StableDiffusionPipeline written by diffusers' save_pretrained."""
    tmp = tmp_path_factory.mktemp("sd")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=8, norm_num_groups=8, use_linear_projection=True,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8, sample_size=16,
    )
    # SD 2.1 base ships a PNDM config; its schedule is what the plugin must pick up.
    scheduler = PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              skip_prk_steps=True, steps_offset=1, num_train_timesteps=1000)
    text_encoder, tokenizer = _tiny_clip_text(tmp)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    path = tmp / "sd-tiny"
    pipe.save_pretrained(path)
    return path, unet, vae


def load(path, **overrides) -> UNetDecoder:
    cfg = UNetDecoderConfig(path=str(path), **overrides)
    return UNetDecoder.from_config(cfg, BuildContext(llm_hidden_size=LLM_DIM))


def test_a_diffusers_saved_pipeline_loads_with_identical_weights(sd_checkpoint):
    path, unet, vae = sd_checkpoint
    assert (path / "model_index.json").is_file() and (path / "text_encoder").is_dir()
    decoder = load(path)
    for ours, theirs in ((decoder.unet, unet), (decoder.vae, vae)):
        mine, ref = ours.state_dict(), theirs.state_dict()
        assert mine.keys() == ref.keys()
        for key in ref:
            assert torch.equal(mine[key], ref[key]), key
    assert decoder.image_size == 16 and decoder.vae_scale_factor == 2
    assert decoder.schedule["beta_schedule"] == "scaled_linear"
    assert decoder.schedule["steps_offset"] == 1
    assert decoder.noise_scheduler.config.beta_end == pytest.approx(0.012)
    assert decoder.adapter.cross_attention_dim == 16  # the UNet's cross-attention width


def test_the_loaded_unet_predicts_like_the_original(sd_checkpoint):
    path, unet, _ = sd_checkpoint
    decoder = load(path, adapter_dropout=0.0).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 700])
    hidden = torch.randn(2, 5, LLM_DIM)
    mask = torch.ones(2, 5, dtype=torch.long)
    with torch.no_grad():
        states = decoder.condition(hidden)
        ours = decoder.denoise(x, t, states, mask)
        theirs = unet(x, t, encoder_hidden_states=states).sample
    torch.testing.assert_close(ours, theirs)


def test_latent_sampling_and_training_run_through_the_vae(sd_checkpoint):
    path, _, _ = sd_checkpoint
    decoder = load(path, scheduler="euler")
    hidden, mask = torch.randn(1, 4, LLM_DIM), torch.ones(1, 4, dtype=torch.long)
    image = decoder.sample(hidden, mask, hidden[:, :2], mask[:, :2], 7.5, 2, torch.Generator().manual_seed(0))
    assert image.shape == (1, 3, 16, 16)
    loss = decoder.training_loss(torch.rand(2, 3, 16, 16) * 2 - 1, hidden.repeat(2, 1, 1), mask.repeat(2, 1))
    loss.backward()
    assert decoder.adapter.proj.weight.grad is not None
    assert all(p.grad is None for p in decoder.vae.parameters())  # the VAE stays frozen


def test_mpm_save_round_trips_adapter_unet_and_schedule(tmp_path):
    cfg = UNetDecoderConfig(
        image_size=16, block_out_channels=[16, 32], cross_attention_dim=32, scheduler="ddpm",
        beta_schedule="squaredcos_cap_v2", pooled_conditioning=True, adapter_standardize=True,
    )
    original = UNetDecoder.from_config(cfg, BuildContext(llm_hidden_size=LLM_DIM))
    with torch.no_grad():
        original.adapter.proj.weight.normal_()
        original.pool.queries.normal_()
    original.condition(torch.randn(2, 3, LLM_DIM) + 1)  # training mode: statistics to save
    original.save_pretrained(str(tmp_path / "trained"))
    assert {p.name for p in (tmp_path / "trained").iterdir()} == {"unet", "scheduler", "adapter"}
    loaded = load(tmp_path / "trained", scheduler="ddpm")
    assert loaded.vae is None and loaded.image_size == 16 and loaded.pooled_conditioning
    assert loaded.adapter.standardize and int(loaded.adapter.input_count) == 6
    assert loaded.schedule["beta_schedule"] == "squaredcos_cap_v2"
    for a, b in ((original, loaded),):
        for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(p, q), name
    hidden, mask = torch.randn(1, 3, LLM_DIM), torch.ones(1, 3, dtype=torch.long)

    def paint(decoder):
        return decoder.sample(hidden, mask, None, None, 1.0, 3, torch.Generator().manual_seed(4))

    torch.testing.assert_close(paint(original), paint(loaded))


def test_an_adapter_for_another_llm_width_is_refused(tmp_path):
    cfg = UNetDecoderConfig(image_size=16, block_out_channels=[16, 32], cross_attention_dim=32)
    UNetDecoder.from_config(cfg, BuildContext(llm_hidden_size=LLM_DIM)).save_pretrained(str(tmp_path / "d"))
    cfg = UNetDecoderConfig(path=str(tmp_path / "d"))
    with pytest.raises(ConfigError, match="24-wide LLM but this pivot LLM is 40 wide"):
        UNetDecoder.from_config(cfg, BuildContext(llm_hidden_size=40))


def test_layout_mistakes_are_clear_errors(sd_checkpoint, tmp_path):
    path, _, _ = sd_checkpoint
    with pytest.raises(ConfigError, match="decoder path not found"):
        load(tmp_path / "nope")
    with pytest.raises(ConfigError, match="directory above it"):
        load(path / "unet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a Stable Diffusion layout"):
        load(tmp_path / "empty")
    pickled = tmp_path / "pickled" / "unet"
    pickled.mkdir(parents=True)
    (pickled / "config.json").write_text((path / "unet" / "config.json").read_text())
    (pickled / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ConfigError, match="no safetensors weights"):
        load(tmp_path / "pickled")
    with pytest.raises(ConfigError, match="no projection class embedding"):
        load(path, pooled_conditioning=True)


def test_meta_build_reads_no_weights(sd_checkpoint):
    path, _, _ = sd_checkpoint
    cfg = UNetDecoderConfig(path=str(path))
    with torch.device("meta"):
        decoder = UNetDecoder.from_config(cfg, BuildContext(llm_hidden_size=LLM_DIM, meta=True))
    assert all(p.is_meta for p in decoder.parameters())
    assert decoder.image_size == 16
