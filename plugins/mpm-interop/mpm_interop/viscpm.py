"""``mpm import viscpm``: VisCPM-Chat and VisCPM-Paint checkpoints -> run folders.

Key mapping (VisCPM's ``VLU_CPMBee`` / ``VLG_CPMBee`` modules -> the MPM stack):

==============================  ==============================================
VisCPM key                      MPM
==============================  ==============================================
``llm.<official>``              ``llm.<official>`` (CPM-Bee layout, own folder)
``vpm.beit3.<k>``               ``vision.beit3.<k>`` (BEiT-3, unilm names)
``vpm.mim_head.*``              dropped (pretraining head, unused by chat)
``query``                       ``vision.query`` (64 queries, B expert)
``mapping.{0,2}.{weight,bias}``  ``vision.mapping.{0,2}.*`` (Linear-GELU-Linear)
``unet.<diffusers>``            ``decoder.unet.<diffusers>`` (SD layout folder)
``trans_block.w_out_res.weight`` ``decoder.adapter.proj.weight`` (no bias)
``trans_block.layernorm.*``     ``decoder.adapter.norm.*``
==============================  ==============================================

Anything else is an error naming the keys. VisCPM-Paint's file holds neither
the VAE nor the scheduler (``SDWrapper`` loads them from Stable Diffusion 2.1
base): pass that folder with ``-o sd=PATH``. The CPM-Bee vocabulary is not in
the checkpoints either: ``-o vocab=PATH`` (VisCPM's ``cpm_tokenizers/vocabs/bee.txt``)
unless a ``vocab.txt``/``bee.txt`` sits beside the checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from mpm_framework.errors import ConfigError, MPMError

from .run_folder import STAGE, dtype_option, prepare_out, write_run

CHAT, PAINT = "chat", "paint"
ADAPTER_KEYS = {"trans_block.w_out_res.weight": "proj.weight", "trans_block.layernorm.weight": "norm.weight",
                "trans_block.layernorm.bias": "norm.bias"}
# VisCPM's decoding and sampling (viscpm_chat.py, stablediffusion.py)
PAINT_SAMPLING = {"guidance_scale": 7.5, "num_inference_steps": 50, "scheduler": "ddpm", "adapter_dropout": 0.0}


def detect_kind(keys: list[str] | set[str]) -> str:
    keys = set(keys)
    if any(k.startswith("vpm.beit3.") for k in keys):
        return CHAT
    if any(k.startswith("unet.") for k in keys) and any(k.startswith("trans_block.") for k in keys):
        return PAINT
    sample = ", ".join(sorted(keys)[:5])
    raise MPMError(f"not a VisCPM checkpoint: no 'vpm.beit3.' (Chat) or 'unet.' + 'trans_block.' (Paint) keys "
                   f"(first keys: {sample})")


def map_keys(keys: list[str] | set[str]) -> dict[str, dict[str, str]]:
    """Source key -> destination, per part: ``llm`` (official CPM-Bee names),
    ``vision`` (Beit3Encoder names), ``unet`` (diffusers names), ``adapter``
    (LLMAdapter names), ``dropped``. Unknown keys raise."""
    kind = detect_kind(keys)
    parts: dict[str, dict[str, str]] = {"llm": {}, "vision": {}, "unet": {}, "adapter": {}, "dropped": {}}
    unknown = []
    for key in sorted(keys):
        if key.startswith("llm."):
            parts["llm"][key] = key[len("llm."):]
        elif kind == CHAT and key.startswith("vpm.beit3."):
            parts["vision"][key] = key[len("vpm."):]
        elif kind == CHAT and key.startswith("vpm.mim_head."):
            parts["dropped"][key] = ""
        elif kind == CHAT and (key == "query" or key.startswith("mapping.")):
            parts["vision"][key] = key
        elif kind == PAINT and key.startswith("unet."):
            parts["unet"][key] = key[len("unet."):]
        elif kind == PAINT and key in ADAPTER_KEYS:
            parts["adapter"][key] = ADAPTER_KEYS[key]
        else:
            unknown.append(key)
    if unknown:
        raise MPMError(f"{len(unknown)} key(s) of this VisCPM {kind} checkpoint have no MPM counterpart: "
                       f"{', '.join(unknown[:6])}")
    if not parts["llm"]:
        raise MPMError("this VisCPM checkpoint holds no 'llm.' (CPM-Bee) weights")
    return parts


def stack_keys(parts: dict[str, dict[str, str]]) -> dict[str, str]:
    """Source key -> the MPM stack's parameter name (what ``load_run`` fills)."""
    out = {src: "llm." + dst for src, dst in parts["llm"].items()}
    out.update({src: "vision." + dst for src, dst in parts["vision"].items()})
    out.update({src: "decoder.unet." + dst for src, dst in parts["unet"].items()})
    out.update({src: "decoder.adapter." + dst for src, dst in parts["adapter"].items()})
    return out


# -- components ---------------------------------------------------------------


def cpm_bee_config(arch: Any, path: str, dtype: str) -> dict[str, Any]:
    """``model.llm`` for a CPM-Bee folder: the size whose architecture matches
    (meta-device planning reads it), the exact architecture as overrides."""
    import dataclasses

    from mpm_llm_cpm_bee.config import ARCHS

    size = next((name for name, a in ARCHS.items() if a == arch), "tiny")
    fields = {f.name: getattr(arch, f.name) for f in dataclasses.fields(arch) if f.name != "mask_modules"}
    if arch.mask_modules is not None:
        fields["mask_modules"] = [list(m) for m in arch.mask_modules]
    return {"name": "cpm-bee", "size": size, "path": path, "dtype": dtype, "arch": fields}


def beit3_config(vision: dict[str, torch.Size | tuple[int, ...]], dtype: str) -> dict[str, Any]:
    """``model.vision`` reproducing the shapes of VisCPM's vision part: the
    preset of that width (heads are not in the shapes), sizes from the tensors."""
    from mpm_vision_beit3.config import PRESETS

    try:
        vocab, width = vision["beit3.text_embed.weight"]
        patch = vision["beit3.vision_embed.proj.weight"][-1]
        vision_rows = vision["beit3.encoder.embed_positions.A.weight"][0]
        text_rows = vision["beit3.encoder.embed_positions.B.weight"][0]
        ffn = vision["beit3.encoder.layers.0.ffn.A.fc1.weight"][0]
    except KeyError as exc:
        raise MPMError(f"VisCPM checkpoint lacks the BEiT-3 tensor vpm.{exc.args[0]}") from None
    preset = next((n for n, a in PRESETS.items() if a.hidden_size == width), None)
    if preset is None:
        raise MPMError(f"no BEiT-3 preset of width {width} (presets: "
                       f"{', '.join(f'{n} {a.hidden_size}' for n, a in PRESETS.items())})")
    grid = int(round((vision_rows - 3) ** 0.5))
    layers = 1 + max(int(k.split(".")[3]) for k in vision if k.startswith("beit3.encoder.layers."))
    cfg: dict[str, Any] = {
        "name": "beit3", "preset": preset, "dtype": dtype, "vocab_size": int(vocab), "num_layers": layers,
        "ffn_size": int(ffn), "max_text_positions": int(text_rows), "patch_size": int(patch),
        "image_size": int(grid * patch),
    }
    if "query" in vision:
        cfg["num_queries"] = int(vision["query"][0])
    else:
        cfg["num_queries"] = 0
    if "mapping.2.weight" in vision:
        cfg["mapping"], cfg["mapping_dim"] = True, int(vision["mapping.2.weight"][0])
    else:
        cfg["mapping"] = False
    return cfg


def _vocab(option: str | None, source: Path) -> Path:
    if option:
        p = Path(option).expanduser()
        if not p.is_file():
            raise ConfigError(f"vocab file not found: {p}")
        return p
    folder = source if source.is_dir() else source.parent
    for name in ("vocab.txt", "bee.txt"):
        if (folder / name).is_file():
            return folder / name
    raise ConfigError("VisCPM checkpoints do not hold the CPM-Bee vocabulary: pass -o vocab=PATH "
                      "(VisCPM's VisCPM/cpm_tokenizers/vocabs/bee.txt)")


def _languages() -> list[str]:
    from mpm_framework.plugins import get_registry

    have = set(get_registry().names("language"))
    return [code for code in ("en", "zh") if code in have]


def _check_shapes(what: str, ours: dict[str, tuple[int, ...]], theirs: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    wrong = sorted(k for k in set(ours) & set(theirs) if tuple(ours[k]) != tuple(theirs[k]))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {', '.join(missing[:4])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:4])}")
        if wrong:
            parts.append("shape " + ", ".join(f"{k} {tuple(theirs[k])} vs {tuple(ours[k])}" for k in wrong[:3]))
        raise MPMError(f"the {what} part does not match the MPM component: {'; '.join(parts)}")


def vision_meta_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Shapes of the Beit3Encoder ``cfg`` builds (meta device, no memory)."""
    from mpm_framework.composition import build_component
    from mpm_framework.contracts.base import BuildContext

    settings = {k: v for k, v in cfg.items() if k != "name"}
    with torch.device("meta"):
        enc = build_component("vision", "beit3", settings, context=BuildContext(meta=True))
    return {k: tuple(v.shape) for k, v in enc.state_dict().items()}


# -- the importer ----------------------------------------------------------------


def import_viscpm(path: Path, out: Path, vocab: str | None = None, sd: str | None = None,
                  dtype: str | None = None) -> Path:
    """Write the run folder of a VisCPM-Chat or VisCPM-Paint checkpoint file."""
    from mpm_llm_cpm_bee.checkpoint import check_keys, infer_arch, save_safetensors
    from mpm_llm_cpm_bee.config import ARCHS
    from mpm_llm_cpm_bee.tokenizer import CPMBeeTokenizer
    from mpm_vision_beit3.checkpoint import read_state_dict

    raw = read_state_dict(path)
    parts = map_keys(raw.keys())
    kind = detect_kind(raw.keys())
    vocab_file = _vocab(vocab, Path(path))
    if kind == PAINT and not sd:
        raise ConfigError("VisCPM-Paint checkpoints hold no VAE and no scheduler: pass -o sd=PATH, a Stable "
                          "Diffusion 2.1 base folder (vae/, scheduler/, unet/config.json)")
    folder = prepare_out(out)
    run = folder.parent
    dtype_name = dtype_option(dtype, raw)

    # LLM: its own folder in the official CPM-Bee layout
    llm_state = {dst: raw[src] for src, dst in parts["llm"].items()}
    base = ARCHS["10b"]
    arch = infer_arch(llm_state, base=base.replace(vocab_size=llm_state["input_embedding.weight"].shape[0]))
    check_keys(llm_state, arch, f"{path} (llm.*)", strict=True)
    tokenizer = CPMBeeTokenizer.from_file(vocab_file)
    if tokenizer.vocab_size != arch.vocab_size:
        raise ConfigError(f"{vocab_file} has {tokenizer.vocab_size} tokens but the checkpoint's CPM-Bee has "
                          f"{arch.vocab_size} embeddings: use the vocabulary of this model")
    llm_dir = folder / "llm"
    save_safetensors(llm_state, arch, llm_dir, vocab=vocab_file)
    model: dict[str, Any] = {"llm": cpm_bee_config(arch, str(llm_dir), dtype_name), "languages": _languages()}
    weights: dict[str, torch.Tensor] = {}
    summary: dict[str, Any] = {"viscpm": kind, "llm_tensors": len(llm_state),
                               "dropped": sorted(parts["dropped"])}

    if kind == CHAT:
        vision = {dst: raw[src] for src, dst in parts["vision"].items()}
        cfg = beit3_config({k: tuple(v.shape) for k, v in vision.items()}, dtype_name)
        _check_shapes("vision", vision_meta_shapes({**cfg, "mapping_dim": cfg.get("mapping_dim")}),
                      {k: tuple(v.shape) for k, v in vision.items()})
        if cfg.get("mapping_dim") not in (None, arch.dim_model):
            raise MPMError(f"the mapping outputs {cfg['mapping_dim']} features but the CPM-Bee is {arch.dim_model} wide")
        model["vision"] = cfg
        model["connector"] = {"name": "identity"}
        weights = {"vision." + k: v for k, v in vision.items()}
        summary["vision_tensors"] = len(vision)
    else:
        decoder_dir = folder / "decoder"
        adapter = {dst: raw[src] for src, dst in parts["adapter"].items()}
        unet = {dst: raw[src] for src, dst in parts["unet"].items()}
        _write_sd_layout(Path(sd), decoder_dir, unet, adapter, arch.dim_model)
        model["decoder"] = {"name": "unet", "path": str(decoder_dir), "dtype": dtype_name, **PAINT_SAMPLING}
        weights = {"decoder.adapter." + k: v for k, v in adapter.items()}
        summary["unet_tensors"] = len(unet)
    return write_run(run, model, weights, str(Path(path).resolve()), "viscpm", summary)


def _write_sd_layout(sd: Path, out: Path, unet: dict[str, torch.Tensor], adapter: dict[str, torch.Tensor],
                     llm_dim: int) -> None:
    """VisCPM's UNet (with SD-2.1's unet config) + SD's VAE and scheduler +
    VisCPM's adapter, as the paint plugin's SD layout."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    sd = sd.expanduser()
    if not (sd / "unet" / "config.json").is_file() or not (sd / "vae" / "config.json").is_file():
        raise ConfigError(f"{sd} is not a Stable Diffusion folder (needs unet/config.json and vae/)")
    config = UNet2DConditionModel.load_config(sd, subfolder="unet")
    with torch.device("meta"):
        reference = UNet2DConditionModel.from_config(config)
    _check_shapes("unet", {k: tuple(v.shape) for k, v in reference.state_dict().items()},
                  {k: tuple(v.shape) for k, v in unet.items()})
    cross = config["cross_attention_dim"]
    if tuple(adapter["proj.weight"].shape) != (cross, llm_dim):
        raise MPMError(f"trans_block.w_out_res.weight is {tuple(adapter['proj.weight'].shape)}, expected "
                       f"({cross}, {llm_dim}) for this UNet and CPM-Bee")
    (out / "unet").mkdir(parents=True, exist_ok=True)
    shutil.copy(sd / "unet" / "config.json", out / "unet" / "config.json")
    save_file({k: v.contiguous() for k, v in unet.items()}, str(out / "unet" / "diffusion_pytorch_model.safetensors"))
    shutil.copytree(sd / "vae", out / "vae")
    if (sd / "scheduler").is_dir():
        shutil.copytree(sd / "scheduler", out / "scheduler")
    (out / "adapter").mkdir()
    (out / "adapter" / "config.json").write_text(json.dumps(
        {"llm_dim": llm_dim, "cross_attention_dim": cross, "dropout": 0.0, "standardize": False}, indent=2))
    save_file({k: v.contiguous() for k, v in adapter.items()}, str(out / "adapter" / "adapter.safetensors"))


__all__ = ["STAGE", "detect_kind", "import_viscpm", "map_keys", "stack_keys"]
