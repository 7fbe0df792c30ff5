"""Tiny CLIP / SigLIP checkpoints saved by transformers itself, once per session."""

import pytest
import torch

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401  (fixtures)

VISION = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
              num_hidden_layers=3, num_attention_heads=4)


@pytest.fixture(scope="session")
def clip_dirs(tmp_path_factory):
    """A full CLIPModel checkpoint (the layout of openai/clip-vit-*) and a bare
    CLIPVisionModel one, each with a 336-style non-default processor config."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPVisionConfig, CLIPVisionModel

    root = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    text = dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=16)
    full = CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=16))
    full.save_pretrained(root / "full")
    vision = CLIPVisionModel(CLIPVisionConfig(**VISION))
    vision.save_pretrained(root / "vision")
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                   image_mean=[0.4, 0.45, 0.5], image_std=[0.2, 0.25, 0.3])
    for d in ("full", "vision"):
        processor.save_pretrained(root / d)
    return {"full": root / "full", "vision": root / "vision"}


@pytest.fixture(scope="session")
def siglip_dir(tmp_path_factory):
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    root = tmp_path_factory.mktemp("siglip")
    torch.manual_seed(1)
    SiglipVisionModel(SiglipVisionConfig(**VISION)).save_pretrained(root)
    SiglipImageProcessor(size={"height": 32, "width": 32}, resample=2).save_pretrained(root)
    return root


@pytest.fixture
def clip_registered(mpm_plugin, tiny_components):  # noqa: F811
    """`clip` and `siglip` in the registry whether or not entry points were loaded."""
    import mpm_vision_clip.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_vision_clip")
    yield
