"""Peak resident memory while a plugin loads its weights, against the weights' bytes.

Each measurement runs in a fresh interpreter so nothing else is resident: it
imports torch and the plugin, notes ``ru_maxrss`` (the baseline), loads a
checkpoint through the plugin's own loading code, and notes ``ru_maxrss``
again. The figure is ``(peak - baseline) / weight bytes``; 1.0 means the
weights were materialised once, 2.0 that a second full copy existed at some
point (the usual ``state_dict = load(file); model.load_state_dict(state_dict)``).

The checkpoints are random, of the real formats, written by another fresh
interpreter (so the writer's memory never counts)::

    python benchmarks/bench_load.py --kinds llama,clip --mb 500
    python benchmarks/bench_load.py --kinds llama --mb 500 --dtype bf16   # fp32 file -> bf16 model

``measure_load(kind, folder)`` is the reusable part (the slow test of the
llama plugin calls it). Not a pytest-benchmark: memory, not time, is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

KINDS = ("llama", "hf-causal-lm", "clip", "siglip", "unet", "cpm-bee", "beit3")
_HERE = Path(__file__).resolve()


# -- writing random checkpoints (runs in a child) ---------------------------------------

def _layers_for(mb: float, per_layer: int) -> int:
    return max(1, round(mb * 2**20 / 4 / per_layer))


def write_checkpoint(kind: str, folder: Path, mb: float) -> None:
    """A random fp32 checkpoint of ``kind`` of about ``mb`` MiB in ``folder``."""
    import torch

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    if kind in ("llama", "hf-causal-lm"):
        from mpm_llm_llama.toy import byte_tokenizer
        from transformers import LlamaConfig, LlamaForCausalLM

        hidden, inter = 1024, 2816
        layers = _layers_for(mb, 4 * hidden * hidden + 3 * hidden * inter)
        tok = byte_tokenizer()
        config = LlamaConfig(vocab_size=len(tok) + 8, hidden_size=hidden, intermediate_size=inter,
                             num_hidden_layers=layers, num_attention_heads=16, num_key_value_heads=16,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
        with torch.device("meta"):
            model = LlamaForCausalLM(config)
        model.to_empty(device="cpu")
        for p in model.parameters():
            p.data.normal_(0, 0.02)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    elif kind in ("clip", "siglip"):
        from transformers import (
            CLIPImageProcessor,
            CLIPVisionConfig,
            CLIPVisionModel,
            SiglipImageProcessor,
            SiglipVisionConfig,
            SiglipVisionModel,
        )

        hidden = 1024
        layers = _layers_for(mb, 12 * hidden * hidden)
        sizes = dict(image_size=224, patch_size=16, hidden_size=hidden, intermediate_size=4 * hidden,
                     num_hidden_layers=layers, num_attention_heads=16)
        if kind == "clip":
            CLIPVisionModel(CLIPVisionConfig(**sizes)).save_pretrained(folder)
            CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}
                               ).save_pretrained(folder)
        else:
            SiglipVisionModel(SiglipVisionConfig(**sizes)).save_pretrained(folder)
            SiglipImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)
    elif kind == "unet":
        from diffusers import UNet2DConditionModel

        # SD-1.x's block layout, narrower; channels scale the size (fp32 MiB ~ 0.032 * c^2).
        c = max(32, int(round((mb / 0.032) ** 0.5 / 32)) * 32)
        unet = UNet2DConditionModel(sample_size=32, in_channels=4, out_channels=4,
                                    block_out_channels=(c, 2 * c, 4 * c, 4 * c), cross_attention_dim=256,
                                    attention_head_dim=8)
        unet.save_pretrained(folder / "unet")
    elif kind == "cpm-bee":
        from mpm_llm_cpm_bee.pivot import CPMBeeLLM

        dim, ff = 1024, 2816
        layers = _layers_for(mb, 4 * dim * dim + 3 * dim * ff)
        model = CPMBeeLLM.from_config({"size": "tiny", "arch": {
            "dim_model": dim, "dim_ff": ff, "num_layers": layers, "num_heads": 16, "dim_head": 64}})
        model.save_pretrained(folder)
    elif kind == "beit3":
        from mpm_vision_beit3.checkpoint import save_safetensors
        from mpm_vision_beit3.encoder import Beit3Encoder

        from mpm_framework.contracts.base import BuildContext

        hidden = 1024
        layers = _layers_for(mb, 20 * hidden * hidden)  # attention + two FFN experts
        from mpm_vision_beit3.config import Beit3Config

        model = Beit3Encoder.from_config(Beit3Config(**_beit3_options(layers)), BuildContext())
        save_safetensors(model, folder / "model.safetensors")
        (folder / "layers.json").write_text(json.dumps({"num_layers": layers}))
    else:
        raise SystemExit(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")


def _beit3_options(layers: int) -> dict[str, Any]:
    return {"preset": "large", "num_layers": layers, "num_queries": 64, "mapping": True, "mapping_dim": 1024,
            "vocab_size": 1024}


# -- loading through the plugin (runs in a child) ---------------------------------------------

def _loader(kind: str, folder: Path, dtype: str):
    """A function that loads ``folder`` through the plugin's code, imports done."""
    from mpm_framework.contracts.base import BuildContext

    if kind in ("llama", "hf-causal-lm"):
        from mpm_llm_llama.model import HFCausalLM, LlamaLLM

        cls = LlamaLLM if kind == "llama" else HFCausalLM
        return lambda: cls.from_config({"path": str(folder), "dtype": dtype}, BuildContext())
    if kind in ("clip", "siglip"):
        from mpm_vision_clip.encoder import ClipEncoder, SiglipEncoder

        cls = ClipEncoder if kind == "clip" else SiglipEncoder
        options = cls.config_class(path=str(folder), dtype=dtype, feature_layer=-1)
        return lambda: cls.from_config(options, BuildContext())
    if kind == "unet":
        import torch
        from mpm_paint_unet.layout import load_layout

        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        import warnings

        warnings.simplefilter("ignore")  # no scheduler folder: the default schedule is fine here
        return lambda: load_layout(folder, None, torch_dtype)
    if kind == "cpm-bee":
        from mpm_llm_cpm_bee.pivot import CPMBeeLLM

        return lambda: CPMBeeLLM.from_pretrained(folder, size="tiny", dtype=dtype)
    if kind == "beit3":
        from mpm_vision_beit3.config import Beit3Config
        from mpm_vision_beit3.encoder import Beit3Encoder

        layers = json.loads((folder / "layers.json").read_text())["num_layers"]
        options = Beit3Config(**_beit3_options(layers), path=str(folder / "model.safetensors"), dtype=dtype)
        return lambda: Beit3Encoder.from_config(options, BuildContext())
    raise SystemExit(f"unknown kind {kind!r}")


def _warm_imports() -> None:
    """Modules the loaders import lazily, imported before the baseline is taken
    so that their code does not count as loading memory."""
    import importlib

    for name in ("safetensors.torch", "accelerate", "transformers.modeling_utils",
                 "transformers.models.llama.modeling_llama", "transformers.models.clip.modeling_clip",
                 "transformers.models.siglip.modeling_siglip", "diffusers"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _child_measure(kind: str, folder: Path, dtype: str) -> dict[str, Any]:
    import resource

    import torch

    torch.set_num_threads(1)
    load = _loader(kind, folder, dtype)
    _warm_imports()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    model = load()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    modules = [model] if isinstance(model, torch.nn.Module) else [m for m in (model.unet, model.vae) if m is not None]
    tensors = {id(t): t for m in modules for t in (*m.parameters(), *m.buffers())}
    loaded = sum(t.numel() * t.element_size() for t in tensors.values())
    # Weights still backed by the file are resident only once read: read every
    # page (as a forward pass does) for the figure that a running model has.
    with torch.no_grad():
        for t in tensors.values():
            flat = t.reshape(-1) if t.is_contiguous() else t.flatten()
            flat[:: max(1, 4096 // t.element_size())].float().sum()
    touched = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"kind": kind, "dtype": dtype, "baseline": baseline, "peak": peak, "touched": touched,
            "weight_bytes": loaded, "ratio": (peak - baseline) / loaded,
            "ratio_touched": (touched - baseline) / loaded}


# -- the parent side ------------------------------------------------------------------------

def _run_child(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error",
           "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(_HERE), *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"bench_load child {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def make_checkpoint(kind: str, folder: str | Path, mb: float = 500) -> Path:
    """Write a random ``kind`` checkpoint of about ``mb`` MiB (in a fresh interpreter)."""
    _run_child("--write", kind, "--folder", str(folder), "--mb", str(mb))
    return Path(folder)


def measure_load(kind: str, folder: str | Path, dtype: str = "fp32") -> dict[str, Any]:
    """``{"baseline", "peak", "weight_bytes", "ratio"}`` of loading ``folder`` in a fresh interpreter."""
    out = _run_child("--measure", kind, "--folder", str(folder), "--dtype", dtype)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--mb", type=float, default=500)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--write", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write_checkpoint(args.write, Path(args.folder), args.mb)
        return
    if args.measure:
        print(json.dumps(_child_measure(args.measure, Path(args.folder), args.dtype)))
        return
    print("| plugin | dtype | weights (MiB) | baseline (MiB) | peak after load (MiB) | ratio after load "
          "| peak, all weights read (MiB) | ratio, all read |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-load-{kind}-") as tmp:
            make_checkpoint(kind, Path(tmp) / "ckpt", args.mb)
            r = measure_load(kind, Path(tmp) / "ckpt", args.dtype)
        print(f"| {kind} | {args.dtype} | {r['weight_bytes'] / 2**20:.0f} | {r['baseline'] / 2**20:.0f} | "
              f"{r['peak'] / 2**20:.0f} | {r['ratio']:.2f} | {r['touched'] / 2**20:.0f} | "
              f"{r['ratio_touched']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
