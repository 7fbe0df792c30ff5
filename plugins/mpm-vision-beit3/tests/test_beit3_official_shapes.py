"""Every preset's state dict against the official layout, key by key.

The expected table is written from torchscale's ``BEiT3`` / ``Encoder`` and
unilm's ``beit3/modeling_utils.py`` (``_get_base_config`` /
``_get_large_config``: multiway, ``normalize_output=True``,
``no_output_layer=True``, ``layernorm_embedding=False``, sub-LayerNorm on,
``max_source_positions`` 1024), never from this plugin's model:

- ``text_embed``: ``nn.Embedding(vocab_size, D)``
- ``vision_embed``: Conv2d(3, D, P, P) + ``mask_token``/``cls_token`` (1, 1, D)
- ``encoder.embed_positions``: ``A`` = ``num_patches + 1 + 2`` rows (the fairseq
  offset added to the vision table), ``B`` = ``max_source_positions`` rows
- per layer, each multiway (``.A``/``.B``): q/k/v/out projections (D, D) with
  bias, ``inner_attn_ln`` (D), ``self_attn_layer_norm`` (D), FFN fc1 (F, D),
  fc2 (D, F), ``ffn_layernorm`` (F), ``final_layer_norm`` (D)
- ``encoder.layer_norm.{A,B}`` (D); no output projection, no embedding norm.
"""

from __future__ import annotations

import pytest
import torch

# name: (D, layers, FFN, vocab, max_source_positions, image, patch) as unilm configures them
OFFICIAL = {
    "base": (768, 12, 3072, 64010, 1024, 224, 16),
    "large": (1024, 24, 4096, 64010, 1024, 224, 16),
}


def official_shapes(D, layers, F, vocab, text_positions, image, patch) -> dict[str, tuple[int, ...]]:
    num_patches = (image // patch) ** 2
    shapes: dict[str, tuple[int, ...]] = {
        "beit3.text_embed.weight": (vocab, D),
        "beit3.vision_embed.mask_token": (1, 1, D),
        "beit3.vision_embed.cls_token": (1, 1, D),
        "beit3.vision_embed.proj.weight": (D, 3, patch, patch),
        "beit3.vision_embed.proj.bias": (D,),
        "beit3.encoder.embed_positions.A.weight": (num_patches + 1 + 2, D),
        "beit3.encoder.embed_positions.B.weight": (text_positions, D),
    }
    for expert in ("A", "B"):
        for part in ("weight", "bias"):
            shapes[f"beit3.encoder.layer_norm.{expert}.{part}"] = (D,)
        for i in range(layers):
            p = f"beit3.encoder.layers.{i}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[f"{p}self_attn.{proj}.{expert}.weight"] = (D, D)
                shapes[f"{p}self_attn.{proj}.{expert}.bias"] = (D,)
            for norm in ("self_attn.inner_attn_ln", "self_attn_layer_norm", "final_layer_norm"):
                for part in ("weight", "bias"):
                    shapes[f"{p}{norm}.{expert}.{part}"] = (D,)
            shapes[f"{p}ffn.{expert}.fc1.weight"] = (F, D)
            shapes[f"{p}ffn.{expert}.fc1.bias"] = (F,)
            shapes[f"{p}ffn.{expert}.fc2.weight"] = (D, F)
            shapes[f"{p}ffn.{expert}.fc2.bias"] = (D,)
            for part in ("weight", "bias"):
                shapes[f"{p}ffn.{expert}.ffn_layernorm.{part}"] = (F,)
    return shapes


def meta_encoder(preset: str, **overrides):
    from mpm_vision_beit3.config import Beit3Config
    from mpm_vision_beit3.encoder import Beit3Encoder

    from mpm_framework.contracts.base import BuildContext

    with torch.device("meta"):
        return Beit3Encoder.from_config(Beit3Config(preset=preset, **overrides), BuildContext(meta=True))


def diff(ours: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> list[str]:
    problems = [f"missing {k} {v}" for k, v in expected.items() if k not in ours]
    problems += [f"unexpected {k} {v}" for k, v in ours.items() if k not in expected]
    problems += [f"{k}: ours {ours[k]} official {v}" for k, v in expected.items() if k in ours and ours[k] != v]
    return problems


@pytest.mark.parametrize("preset", sorted(OFFICIAL))
def test_backbone_state_dict_is_the_official_layout(preset):
    enc = meta_encoder(preset, num_queries=0, mapping=False)
    ours = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert diff(ours, official_shapes(*OFFICIAL[preset])) == []


def test_tiny_preset_follows_the_same_rules():
    from mpm_vision_beit3.config import PRESETS

    a = PRESETS["tiny"]
    enc = meta_encoder("tiny", num_queries=0, mapping=False)
    ours = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    expected = official_shapes(a.hidden_size, a.num_layers, a.ffn_size, a.vocab_size, a.max_text_positions,
                               a.image_size, a.patch_size)
    assert diff(ours, expected) == []


def test_viscpm_chat_vision_part_is_the_official_layout():
    """VisCPM-Chat's ``vpm``/``query``/``mapping`` (vlu_cpmbee.py: 64 queries of
    the BEiT-3 width, Linear(1024, 4096) -> GELU -> Linear(4096, 4096))."""
    enc = meta_encoder("large", num_queries=64, mapping_dim=4096)
    ours = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    expected = official_shapes(*OFFICIAL["large"])
    expected.update({"query": (64, 1024), "mapping.0.weight": (4096, 1024), "mapping.0.bias": (4096,),
                     "mapping.2.weight": (4096, 4096), "mapping.2.bias": (4096,)})
    assert diff(ours, expected) == []


def test_official_shaped_checkpoint_loads_into_the_preset(tmp_path, make_beit3):
    """A file with the official table sizes (text table = max_text_positions rows)
    loads without a shape error: the bug this file guards against."""
    from mpm_vision_beit3.checkpoint import load_into
    from mpm_vision_beit3.config import PRESETS

    a = PRESETS["tiny"]
    shapes = official_shapes(a.hidden_size, a.num_layers, a.ffn_size, a.vocab_size, a.max_text_positions,
                             a.image_size, a.patch_size)
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v, generator=g) for k, v in shapes.items()}
    torch.save({"model": state}, tmp_path / "beit3.pth")
    enc = make_beit3(num_queries=0, mapping=False)
    report = load_into(enc, tmp_path / "beit3.pth")
    assert report.ok and not report.interpolated
    torch.testing.assert_close(enc.beit3.encoder.embed_positions.B.weight,
                               state["beit3.encoder.embed_positions.B.weight"])


def test_split_minus_one_means_all_vision(make_beit3, perturbed):
    """torchscale: ``multiway_split_position == -1`` routes every token to A; 0 to B."""
    from mpm_vision_beit3.modeling import Multiway

    mw = Multiway(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(mw(x, -1), mw.A(x))
    torch.testing.assert_close(mw(x, 0), mw.B(x))
    torch.testing.assert_close(mw(x, 2), torch.cat([mw.A(x[:, :2]), mw.B(x[:, 2:])], 1))
    model = perturbed(make_beit3()).eval()
    out = model.beit3(visual_tokens=torch.randn(1, 3, 32, 32))
    assert out["multiway_split_position"] == -1  # as torchscale's BEiT3 reports image-only input
    with pytest.raises(Exception, match="split position"):
        mw(x, -2)
