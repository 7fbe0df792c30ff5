"""Paint fixtures: the tiny pivot plus the ``unet`` decoder (registered in-process
when the mpm-paint-unet distribution is not installed)."""

import pytest

pytest.importorskip("mpm_paint_unet", reason="the paint tests need plugins/mpm-paint-unet installed")

TINY_DECODER = [
    "model.decoder.image_size=16",
    "model.decoder.block_out_channels=[16,32]",
    "model.decoder.cross_attention_dim=32",
]


@pytest.fixture
def paint_components(tiny_components, mpm_plugin):
    import mpm_paint_unet.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_paint_unet")
    yield


@pytest.fixture
def make_paint_stack(paint_components):
    """``make_paint_stack("model.decoder.trainable=all", ...)``: a tiny stack."""
    from mpm_framework.composition import compose

    def make(*overrides: str, lang=None):
        return compose(llm="tiny-llm", decoder="unet", lang=lang, overrides=[*TINY_DECODER, *overrides])

    return make


@pytest.fixture
def tiny_paint_stack(make_paint_stack):
    return make_paint_stack()



@pytest.fixture
def tiny_clip(tmp_path):
    """A tiny CLIP model + processor saved with save_pretrained: (path, model, processor)."""
    import json

    import torch

    path = tmp_path / "clip"
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "red</w>": 3, "circle</w>": 4}
    path.mkdir()
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer,
    )
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 16, "patch_size": 8},
        projection_dim=8,
    )
    torch.manual_seed(0)
    model = CLIPModel(config)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path, model, processor
