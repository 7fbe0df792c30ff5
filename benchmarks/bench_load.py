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
    python benchmarks/bench_load.py --mb 500 --dtype fp32,bf16 --kinds llama,clip,llava-peer --results

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
# The peer: transformers' own LlavaForConditionalGeneration.from_pretrained (not an MPM plugin).
PEERS = ("llava-peer",)
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
        from mpm_llm_cpm_bee.config import CPMBeeLLMConfig
        from mpm_llm_cpm_bee.pivot import CPMBeeLLM

        dim, ff = 1024, 2816
        layers = _layers_for(mb, 4 * dim * dim + 3 * dim * ff)
        model = CPMBeeLLM.from_config(CPMBeeLLMConfig(size="tiny", arch={
            "dim_model": dim, "dim_ff": ff, "num_layers": layers, "num_heads": 16, "dim_head": 64}))
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
    elif kind == "llava-peer":
        from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

        hidden, inter = 1024, 2816
        vision = CLIPVisionConfig(image_size=224, patch_size=16, hidden_size=hidden, intermediate_size=4 * hidden,
                                  num_hidden_layers=4, num_attention_heads=16)
        layers = _layers_for(max(mb - 4 * 12 * hidden * hidden * 4 / 2**20, 1), 4 * hidden * hidden + 3 * hidden * inter)
        text = LlamaConfig(vocab_size=32000, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                           num_attention_heads=16, num_key_value_heads=16)
        config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=31999)
        with torch.device("meta"):
            model = LlavaForConditionalGeneration(config)
        model.to_empty(device="cpu")
        for p in model.parameters():
            p.data.normal_(0, 0.02)
        model.save_pretrained(folder)
    else:
        raise SystemExit(f"unknown kind {kind!r}; kinds: {', '.join(KINDS + PEERS)}")


def _beit3_options(layers: int) -> dict[str, Any]:
    return {"preset": "large", "num_layers": layers, "num_queries": 64, "mapping": True, "mapping_dim": 1024,
            "vocab_size": 1024}


# -- loading through the plugin (runs in a child) ---------------------------------------------

def _loader(kind: str, folder: Path, dtype: str):
    """A function that loads ``folder`` through the plugin's code, imports done."""
    from mpm_framework.config.choices import torch_dtype
    from mpm_framework.contracts.base import BuildContext

    if kind in ("llama", "hf-causal-lm"):
        from mpm_llm_llama.model import HFCausalLM, LlamaLLM

        cls = LlamaLLM if kind == "llama" else HFCausalLM
        return lambda: cls.from_config(cls.config_class(path=str(folder), dtype=dtype), BuildContext())
    if kind in ("clip", "siglip"):
        from mpm_vision_clip.encoder import ClipEncoder, SiglipEncoder

        cls = ClipEncoder if kind == "clip" else SiglipEncoder
        options = cls.config_class(path=str(folder), dtype=dtype, feature_layer=-1)
        return lambda: cls.from_config(options, BuildContext())
    if kind == "unet":
        import warnings

        from mpm_paint_unet.layout import load_layout

        warnings.simplefilter("ignore")  # no scheduler folder: the default schedule is fine here
        return lambda: load_layout(folder, None, torch_dtype(dtype))
    if kind == "cpm-bee":
        from mpm_llm_cpm_bee.pivot import CPMBeeLLM

        return lambda: CPMBeeLLM.from_pretrained(folder, size="tiny", dtype=dtype)
    if kind == "beit3":
        from mpm_vision_beit3.config import Beit3Config
        from mpm_vision_beit3.encoder import Beit3Encoder

        layers = json.loads((folder / "layers.json").read_text())["num_layers"]
        options = Beit3Config(**_beit3_options(layers), path=str(folder / "model.safetensors"), dtype=dtype)
        return lambda: Beit3Encoder.from_config(options, BuildContext())
    if kind == "llava-peer":
        from transformers import LlavaForConditionalGeneration

        return lambda: LlavaForConditionalGeneration.from_pretrained(str(folder), dtype=torch_dtype(dtype))
    raise SystemExit(f"unknown kind {kind!r}")


def _warm_imports() -> None:
    """Modules the loaders import lazily, imported before the baseline is taken
    so that their code does not count as loading memory."""
    import importlib

    for name in ("safetensors.torch", "accelerate", "transformers.modeling_utils",
                 "transformers.models.llava.modeling_llava",
                 "transformers.models.llama.modeling_llama", "transformers.models.clip.modeling_clip",
                 "transformers.models.siglip.modeling_siglip", "diffusers",
                 # diffusers imports its model classes lazily: tens of MiB that are code, not weights
                 "diffusers.models.unets.unet_2d_condition", "diffusers.models.autoencoders.autoencoder_kl"):
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
    parser.add_argument("--dtype", default="fp32", help="one or more, comma-separated (fp32,bf16)")
    parser.add_argument("--results", action="store_true", help="also write the table into RESULTS.md")
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
    lines = ["| plugin | dtype | weights (MiB) | baseline (MiB) | peak after load (MiB) | ratio after load "
             "| peak, all weights read (MiB) | ratio, all read | target <= 1.15 |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    load = os.getloadavg()[0]
    for dtype in args.dtype.split(","):
        for kind in args.kinds.split(","):
            with tempfile.TemporaryDirectory(prefix=f"bench-load-{kind}-") as tmp:
                make_checkpoint(kind, Path(tmp) / "ckpt", args.mb)
                r = measure_load(kind, Path(tmp) / "ckpt", dtype)
            load = max(load, os.getloadavg()[0])
            lines.append(f"| {kind} | {dtype} | {r['weight_bytes'] / 2**20:.0f} | {r['baseline'] / 2**20:.0f} | "
                         f"{r['peak'] / 2**20:.0f} | {r['ratio']:.2f} | {r['touched'] / 2**20:.0f} | "
                         f"{r['ratio_touched']:.2f} | {'yes' if r['ratio_touched'] <= 1.15 else '**no**'} |")
            print(lines[-1], flush=True)
    if args.results:
        write_results(lines, args.mb, load)


MARK_BEGIN, MARK_END = "<!-- bench_load:begin -->", "<!-- bench_load:end -->"


def _keep_other_rows(current: str, text: str) -> str:
    """``text`` with the rows of the existing block that it does not measure again
    (another plugin or dtype) appended, so a partial run updates only its rows."""
    if MARK_BEGIN not in current:
        return text
    old = current.split(MARK_BEGIN, 1)[1].split(MARK_END, 1)[0]

    def rows(block: str) -> dict[tuple[str, str], str]:
        return {tuple(c.strip() for c in line.split("|")[1:3]): line for line in block.splitlines()
                if line.startswith("| ") and not line.startswith("| plugin")}

    new_rows = rows(text)
    kept = [line for key, line in rows(old).items() if key not in new_rows]
    return text.rstrip() + ("\n" + "\n".join(kept) if kept else "")


def write_results(table: list[str], mb: float, load: float) -> None:
    """Put the table into RESULTS.md between this script's markers."""
    import datetime
    import platform
    import re

    import torch

    text = "\n".join([
        "## Load memory (`benchmarks/bench_load.py`)", "",
        f"Peak RSS while loading a random ~{mb:g} MiB fp32 checkpoint of each kind through the plugin's own "
        "code, in a fresh interpreter: (peak - baseline) / weight bytes, where the baseline is the "
        "interpreter with torch, transformers, diffusers and the plugin imported. 'After load' is the "
        "peak when loading returns (memory-mapped weights are not yet read); 'all weights read' after "
        "reading every page, as a forward pass does. bf16 rows convert the fp32 file while loading. "
        "`llava-peer` is transformers' `LlavaForConditionalGeneration.from_pretrained` on a LLaVA "
        "checkpoint of the same size (Llama text model + CLIP tower). A run of some plugins replaces "
        "their rows and keeps the others (the date is the latest run's).", "",
        f"- {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work (load average up to {load:.1f}); "
        f"torch {torch.__version__}", "", *table])
    path = _HERE.parent / "RESULTS.md"
    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    text = _keep_other_rows(current, text)
    block = f"{MARK_BEGIN}\n{text.strip()}\n{MARK_END}"
    if MARK_BEGIN in current:
        current = re.sub(re.escape(MARK_BEGIN) + r".*?" + re.escape(MARK_END), lambda _m: block, current, flags=re.S)
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current, encoding="utf-8")


if __name__ == "__main__":
    main()
