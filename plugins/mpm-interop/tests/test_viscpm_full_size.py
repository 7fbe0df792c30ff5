"""Full-size VisCPM key tables on the meta device: every key of a VisCPM-Chat /
VisCPM-Paint checkpoint maps to a parameter of the composed MPM stack with the
same shape, every stack parameter is covered, nothing is left over.

The source tables are written from VisCPM's code: ``VLU_CPMBee`` (``vpm`` =
``BEiT3Wrapper`` over torchscale's BEiT3 large with ``mim_head`` Linear(1024,
8192); ``query`` (64, 1024); ``mapping`` Linear(1024, 4096)-GELU-Linear(4096,
4096); ``llm`` = CPMBeeTorch 10B), ``VLG_CPMBee`` (``SDWrapper.unet`` =
diffusers' UNet2DConditionModel with SD-2.1-base's config; ``trans_block`` =
Linear(4096, 1024, bias=False) + LayerNorm(1024); ``llm``)."""

from __future__ import annotations

import json

import torch

SD21_BASE_UNET = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20],
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False, "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
    "out_channels": 4, "sample_size": 64, "use_linear_projection": True,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}


def beit3_large_table() -> dict[str, tuple[int, ...]]:
    D, F, L = 1024, 4096, 24
    t = {"beit3.text_embed.weight": (64010, D), "beit3.vision_embed.mask_token": (1, 1, D),
         "beit3.vision_embed.cls_token": (1, 1, D), "beit3.vision_embed.proj.weight": (D, 3, 16, 16),
         "beit3.vision_embed.proj.bias": (D,), "beit3.encoder.embed_positions.A.weight": (199, D),
         "beit3.encoder.embed_positions.B.weight": (1024, D)}
    for e in ("A", "B"):
        t[f"beit3.encoder.layer_norm.{e}.weight"] = t[f"beit3.encoder.layer_norm.{e}.bias"] = (D,)
        for i in range(L):
            p = f"beit3.encoder.layers.{i}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                t[f"{p}self_attn.{proj}.{e}.weight"], t[f"{p}self_attn.{proj}.{e}.bias"] = (D, D), (D,)
            for n in ("self_attn.inner_attn_ln", "self_attn_layer_norm", "final_layer_norm"):
                t[f"{p}{n}.{e}.weight"] = t[f"{p}{n}.{e}.bias"] = (D,)
            t[f"{p}ffn.{e}.fc1.weight"], t[f"{p}ffn.{e}.fc1.bias"] = (F, D), (F,)
            t[f"{p}ffn.{e}.fc2.weight"], t[f"{p}ffn.{e}.fc2.bias"] = (D, F), (D,)
            t[f"{p}ffn.{e}.ffn_layernorm.weight"] = t[f"{p}ffn.{e}.ffn_layernorm.bias"] = (F,)
    return t


def cpm_bee_10b_table() -> dict[str, tuple[int, ...]]:
    from mpm_llm_cpm_bee.checkpoint import _shapes
    from mpm_llm_cpm_bee.config import ARCHS

    return {"llm." + k: v for k, v in _shapes(ARCHS["10b"]).items()}


def _meta_shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _mapped(source: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    from mpm_interop.viscpm import map_keys, stack_keys

    names = stack_keys(map_keys(source.keys()))
    assert set(names) | set(map_keys(source.keys())["dropped"]) == set(source)
    return {names[k]: v for k, v in source.items() if k in names}


def test_viscpm_chat_full_size(interop):
    from mpm_interop.viscpm import beit3_config, vision_meta_shapes

    from mpm_framework.composition import compose

    source = {"vpm." + k: v for k, v in beit3_large_table().items()}
    source.update({"vpm.mim_head.weight": (8192, 1024), "vpm.mim_head.bias": (8192,), "query": (64, 1024),
                   "mapping.0.weight": (4096, 1024), "mapping.0.bias": (4096,),
                   "mapping.2.weight": (4096, 4096), "mapping.2.bias": (4096,)})
    source.update(cpm_bee_10b_table())
    stack = compose(llm="cpm-bee", vision="beit3", connector="identity", meta=True,
                    overrides=["model.llm.size=10b", "model.vision.preset=large", "model.vision.num_queries=64"])
    ours = _meta_shapes(stack)
    assert _mapped(source) == ours
    # the vision config the importer derives from the shapes rebuilds exactly this part
    vision = {k[4:] if k.startswith("vpm.") else k: v for k, v in source.items()
              if not k.startswith(("llm.", "vpm.mim_head."))}
    cfg = beit3_config(vision, "fp16")
    assert cfg["preset"] == "large" and cfg["num_queries"] == 64 and cfg["mapping_dim"] == 4096
    assert vision_meta_shapes(cfg) == vision


def test_viscpm_paint_full_size(interop, tmp_path):
    from diffusers import UNet2DConditionModel

    from mpm_framework.composition import compose

    sd = tmp_path / "sd21"
    (sd / "unet").mkdir(parents=True)
    (sd / "unet" / "config.json").write_text(json.dumps(SD21_BASE_UNET))
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(SD21_BASE_UNET)
    source = {"unet." + k: v for k, v in _meta_shapes(unet).items()}
    source.update({"trans_block.w_out_res.weight": (1024, 4096), "trans_block.layernorm.weight": (1024,),
                   "trans_block.layernorm.bias": (1024,)})
    source.update(cpm_bee_10b_table())
    stack = compose(llm="cpm-bee", decoder="unet", meta=True,
                    overrides=["model.llm.size=10b", f"model.decoder.path={sd}"])
    ours = _meta_shapes(stack)
    assert _mapped(source) == ours
    assert len([k for k in ours if k.startswith("decoder.unet.")]) == len(_meta_shapes(unet)) > 600
