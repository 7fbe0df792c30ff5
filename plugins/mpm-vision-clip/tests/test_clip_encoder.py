"""CLIP / SigLIP towers against transformers' own models and image processors."""

import numpy as np
import pytest
import torch
from PIL import Image

from mpm_framework.composition import component_config
from mpm_framework.contracts.base import BuildContext
from mpm_framework.errors import ConfigError, MPMError


def _build(family, **overrides):
    from mpm_vision_clip.config import ClipVisionConfig, SiglipVisionConfig
    from mpm_vision_clip.encoder import ClipEncoder, SiglipEncoder

    cfg_cls, enc_cls = (ClipVisionConfig, ClipEncoder) if family == "clip" else (SiglipVisionConfig, SiglipEncoder)
    return enc_cls.from_config(cfg_cls(**overrides), BuildContext()).eval()


def _reference(family, path):
    from transformers import CLIPVisionModel, SiglipVisionModel

    cls = CLIPVisionModel if family == "clip" else SiglipVisionModel
    return cls.from_pretrained(str(path)).eval()


def _pixels(n=2):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("layout", ["full", "vision"])
@pytest.mark.parametrize("feature_layer, keep_cls", [(-2, False), (-2, True), (-1, False), (1, False), (0, True)])
def test_clip_matches_transformers(clip_dirs, layout, feature_layer, keep_cls):
    enc = _build("clip", path=str(clip_dirs[layout]), feature_layer=feature_layer, keep_cls=keep_cls)
    ref = _reference("clip", clip_dirs[layout])
    pixels = _pixels()
    with torch.no_grad():
        expected = ref(pixel_values=pixels, output_hidden_states=True).hidden_states[feature_layer]
        got = enc(pixels)
    expected = expected if keep_cls else expected[:, 1:]
    assert got.shape == (2, enc.num_output_tokens, 32) and enc.num_output_tokens == 16 + int(keep_cls)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("feature_layer", [-2, -1, 2])
def test_siglip_matches_transformers(siglip_dir, feature_layer):
    enc = _build("siglip", path=str(siglip_dir), feature_layer=feature_layer)
    ref = _reference("siglip", siglip_dir)
    pixels = _pixels()
    with torch.no_grad():
        expected = ref(pixel_values=pixels, output_hidden_states=True).hidden_states[feature_layer]
        got = enc(pixels)
    assert got.shape == (2, 16, 32) and enc.num_output_tokens == 16
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_unused_layers_and_heads_are_pruned(clip_dirs, siglip_dir):
    clip = _build("clip", path=str(clip_dirs["full"]), feature_layer=-2)
    assert len(clip.model.encoder.layers) == 2 and clip.num_layers_total == 3
    siglip = _build("siglip", path=str(siglip_dir), feature_layer=-1)
    assert not hasattr(siglip.model, "head") and len(siglip.model.encoder.layers) == 3
    for enc in (clip, siglip):  # every kept parameter reaches the features (DDP-safe)
        enc.train()
        enc(_pixels()).sum().backward()
        assert all(p.grad is not None for p in enc.parameters())


def test_unpruned_tower_selects_the_same_layer(clip_dirs):
    pruned = _build("clip", path=str(clip_dirs["vision"]), feature_layer=-2)
    whole = _build("clip", path=str(clip_dirs["vision"]), feature_layer=-2, prune_layers=False)
    assert len(whole.model.encoder.layers) == 3
    with torch.no_grad():
        torch.testing.assert_close(pruned(_pixels()), whole(_pixels()))


@pytest.mark.parametrize("family", ["clip", "siglip"])
@pytest.mark.parametrize("size", [(50, 40), (40, 64), (32, 32)])
def test_preprocessing_matches_the_checkpoints_processor(clip_dirs, siglip_dir, family, size):
    from transformers import AutoImageProcessor

    path = clip_dirs["full"] if family == "clip" else siglip_dir
    enc = _build(family, path=str(path))
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    expected = AutoImageProcessor.from_pretrained(str(path))(image, return_tensors="pt")["pixel_values"][0]
    got = enc.image_transform(train=False)(image)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert enc.image_transform(train=True)(image).shape == (3, 32, 32)
    if family == "clip":
        assert enc.image_mean == (0.4, 0.45, 0.5) and enc.spec.resample == Image.BICUBIC
    else:
        assert enc.image_mean == (0.5, 0.5, 0.5) and enc.spec.resample == Image.BILINEAR


def test_pad_to_square_uses_the_mean_colour():
    enc = _build("clip", pad_to_square=True)
    image = Image.new("RGB", (32, 16), (255, 0, 0))
    out = enc.image_transform()(image)
    mean, std = torch.tensor(enc.image_mean), torch.tensor(enc.image_std)
    background = (torch.tensor([int(m * 255) for m in enc.image_mean]) / 255 - mean) / std
    torch.testing.assert_close(out[:, 0, 0], background)
    torch.testing.assert_close(out[:, 16, 16], (torch.tensor([1.0, 0, 0]) - mean) / std)


def test_tiny_random_towers_without_a_path():
    clip, siglip = _build("clip"), _build("siglip", keep_cls=False)
    assert clip(_pixels()).shape == (2, 16, 32) and siglip(_pixels()).shape == (2, 16, 32)
    assert clip.image_mean == (0.48145466, 0.4578275, 0.40821073) and siglip.image_std == (0.5, 0.5, 0.5)
    same = _build("clip")
    torch.testing.assert_close(clip(_pixels()), same(_pixels()))  # seeded


def test_trainable_groups(clip_dirs):
    enc = _build("clip", path=str(clip_dirs["full"]))
    groups = enc.trainable_groups()
    assert {"patch_embed", "embeddings", "encoder", "all", "last_layer"} <= set(groups)
    names = [n for n, _ in enc.named_parameters()]
    for group in ("patch_embed", "encoder", "last_layer"):
        assert any(n.startswith(tuple(groups[group])) for n in names), group


def test_user_errors_are_clear(clip_dirs, tmp_path):
    with pytest.raises(ConfigError, match="out of range"):
        _build("clip", feature_layer=-5)
    with pytest.raises(ConfigError, match="no CLS token"):
        _build("siglip", keep_cls=True)
    with pytest.raises(ConfigError, match="not found"):
        _build("clip", path=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="Did you mean 'bf16'"):  # a Literal choice: checked at resolve time
        component_config("vision", "clip", ["dtype=bf61"])
    with pytest.raises(ConfigError, match="Use vision=clip"):
        _build("siglip", path=str(clip_dirs["vision"]))  # a CLIP checkpoint is no SigLIP
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(clip_dirs["vision"].joinpath("config.json").read_text())
    with pytest.raises(MPMError, match="cannot load the clip tower"):
        _build("clip", path=str(broken))  # config but no weights


def test_meta_build_allocates_nothing(clip_dirs):
    from mpm_vision_clip.config import ClipVisionConfig
    from mpm_vision_clip.encoder import ClipEncoder

    cfg = ClipVisionConfig(path=str(clip_dirs["full"]))
    with torch.device("meta"):
        enc = ClipEncoder.from_config(cfg, BuildContext(meta=True))
    assert all(p.is_meta for p in enc.parameters()) and enc.num_output_tokens == 16
