"""The towers are loaded in place (parameters built on the meta device, the
checkpoint's tensors assigned): same weights as transformers' from_pretrained,
for both checkpoint layouts and with a dtype conversion."""

import pytest
import torch


def _classes(family):
    from mpm_vision_clip.encoder import ClipEncoder, SiglipEncoder
    from transformers import CLIPVisionConfig, CLIPVisionModel, SiglipVisionConfig, SiglipVisionModel

    if family == "clip":
        return ClipEncoder, CLIPVisionConfig, CLIPVisionModel
    return SiglipEncoder, SiglipVisionConfig, SiglipVisionModel


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("family,layout", [("clip", "full"), ("clip", "vision"), ("siglip", None)])
def test_in_place_load_equals_from_pretrained(clip_dirs, siglip_dir, family, layout, dtype):
    encoder, config_cls, model_cls = _classes(family)
    path = clip_dirs[layout] if layout else siglip_dir
    config = config_cls.from_pretrained(str(path))
    config.num_hidden_layers = 2  # pruned: the third layer is never read
    ours = encoder._load_in_place(model_cls, path, config, dtype)
    assert ours is not None, "the in-place path fell back to from_pretrained"
    ref = model_cls.from_pretrained(str(path), config=config, dtype=dtype)
    assert not [n for n, p in ours.named_parameters() if p.is_meta]
    mine, theirs = ours.state_dict(), ref.state_dict()
    assert mine.keys() == theirs.keys()
    for key in theirs:
        if "head" in key or "post_layernorm" in key:  # the tower removes them
            continue
        assert mine[key].dtype == theirs[key].dtype, key
        torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0, msg=key)
    assert not ours.training


def test_int8_tower_matches_fp32_within_tolerance(clip_dirs):
    """model.vision.quantize=int8: the tower's linear layers hold int8 weights;
    features keep cosine >= 0.99 with fp32 (mean over tokens, tiny tower)."""
    from mpm_vision_clip.config import ClipVisionConfig
    from mpm_vision_clip.encoder import ClipEncoder

    from mpm_framework.contracts.base import BuildContext
    from mpm_framework.quantize import is_quantized

    def build(**kw):
        return ClipEncoder.from_config(ClipVisionConfig(path=str(clip_dirs["vision"]), **kw), BuildContext()).eval()

    fp32, int8 = build(), build(quantize="int8")
    assert is_quantized(int8) and not is_quantized(fp32)
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(fp32(pixels), int8(pixels), dim=-1)
    print("clip int8 feature cosine: mean", cos.mean().item(), "min", cos.min().item())
    assert cos.mean() >= 0.99
