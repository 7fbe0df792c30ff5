"""Reading and writing Stable Diffusion-layout directories.

The layout is what diffusers' ``save_pretrained`` writes for a pipeline::

    unet/config.json + diffusion_pytorch_model[.variant].safetensors
    vae/config.json  + diffusion_pytorch_model[.variant].safetensors   (latent models)
    scheduler/scheduler_config.json
    adapter/config.json + adapter.safetensors                           (written by MPM)

Text encoders and tokenizers next to them (``text_encoder/``, ``tokenizer/``)
are ignored: the pivot LLM replaces them. Only safetensors weights are read;
pickled ``.bin`` files can run code when loaded.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mpm_framework.errors import ConfigError

from .schedulers import schedule_from_json

ADAPTER_DIR = "adapter"
ADAPTER_WEIGHTS = "adapter.safetensors"


@dataclass
class LoadedLayout:
    unet: Any
    vae: Any | None
    schedule: dict[str, Any] | None
    adapter_config: dict[str, Any] | None
    adapter_state: dict[str, torch.Tensor] | None


def _check_dir(root: Path) -> None:
    if not root.is_dir():
        raise ConfigError(f"decoder path not found: {root}")
    if (root / "unet" / "config.json").is_file():
        return
    own = root / "config.json"
    if own.is_file() and json.loads(own.read_text()).get("_class_name") == "UNet2DConditionModel":
        raise ConfigError(
            f"{root} is a UNet folder; point model.decoder.path at the directory above it "
            "(the one holding unet/, vae/ and scheduler/)"
        )
    raise ConfigError(
        f"{root} is not a Stable Diffusion layout: unet/config.json is missing "
        "(expected unet/, optional vae/, scheduler/ as written by diffusers' save_pretrained)"
    )


def _load_model(cls: Any, root: Path, subfolder: str, variant: str | None, dtype: torch.dtype, meta: bool):
    if meta:  # planning: shapes only, no weights read
        return cls.from_config(cls.load_config(root, subfolder=subfolder))
    folder = root / subfolder
    has_safetensors = any(folder.glob("*.safetensors"))
    if not has_safetensors:
        found = ", ".join(sorted(p.name for p in folder.iterdir() if p.is_file())) or "nothing"
        raise ConfigError(
            f"no safetensors weights in {folder} (found: {found}). Pickled .bin weights are not "
            "loaded because unpickling can run code; convert them with diffusers' "
            "save_pretrained(safe_serialization=True)."
        )
    model = _load_in_place(cls, root, subfolder, variant, dtype)
    if model is not None:
        return model
    try:
        return cls.from_pretrained(
            root, subfolder=subfolder, variant=variant, torch_dtype=dtype, use_safetensors=True
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load {folder}: {first}") from None


def _load_in_place(cls: Any, root: Path, subfolder: str, variant: str | None, dtype: torch.dtype):
    """The model built with its parameters on the meta device and the folder's
    safetensors assigned (memory-mapped at the stored dtype, converted one
    tensor at a time otherwise): the weights are in memory once (diffusers'
    own loader measured 1.45x). None when the names do not cover the model
    (older layouts diffusers renames while loading); the caller then uses
    ``from_pretrained``."""
    from accelerate import init_empty_weights

    from mpm_framework.weight_files import load_files_into, safetensors_files

    files = safetensors_files(root / subfolder, "diffusion_pytorch_model", variant)
    if not files:
        return None
    with init_empty_weights(include_buffers=False):
        model = cls.from_config(cls.load_config(root, subfolder=subfolder))
    if load_files_into(model, files, dtype):
        return None
    return model.to(dtype).eval()


def load_layout(path: str | Path, variant: str | None, dtype: torch.dtype, meta: bool = False) -> LoadedLayout:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    root = Path(path).expanduser()
    _check_dir(root)
    unet = _load_model(UNet2DConditionModel, root, "unet", variant, dtype, meta)
    vae = None
    if (root / "vae" / "config.json").is_file():
        vae = _load_model(AutoencoderKL, root, "vae", variant, dtype, meta)
    schedule = None
    scheduler_file = root / "scheduler" / "scheduler_config.json"
    if scheduler_file.is_file():
        schedule = schedule_from_json(json.loads(scheduler_file.read_text()))
    else:
        warnings.warn(f"{root} has no scheduler/scheduler_config.json; using the default schedule", stacklevel=2)
    adapter_config = adapter_state = None
    adapter_dir = root / ADAPTER_DIR
    if (adapter_dir / "config.json").is_file():
        adapter_config = json.loads((adapter_dir / "config.json").read_text())
        if not meta:
            from safetensors.torch import load_file

            adapter_state = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    return LoadedLayout(unet, vae, schedule, adapter_config, adapter_state)


def save_layout(decoder: Any, path: str | Path) -> None:
    """Write the decoder as an SD layout plus ``adapter/`` (loadable by this plugin;
    ``unet/``, ``vae/`` and ``scheduler/`` also by plain diffusers)."""
    from safetensors.torch import save_file

    from .schedulers import build_sampler

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    decoder.unet.save_pretrained(root / "unet", safe_serialization=True)
    if decoder.vae is not None:
        decoder.vae.save_pretrained(root / "vae", safe_serialization=True)
    build_sampler(decoder.sampler_name, decoder.schedule).save_pretrained(root / "scheduler")
    adapter_dir = root / ADAPTER_DIR
    adapter_dir.mkdir(exist_ok=True)
    adapter = decoder.adapter
    (adapter_dir / "config.json").write_text(
        json.dumps(
            {"llm_dim": adapter.llm_dim, "cross_attention_dim": adapter.cross_attention_dim,
             "dropout": adapter.dropout.p, "standardize": adapter.standardize},
            indent=2,
        )
    )
    state = dict(adapter.state_dict())
    if getattr(decoder, "pool", None) is not None:
        state.update({f"pool.{k}": v for k, v in decoder.pool.state_dict().items()})
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(state, str(adapter_dir / ADAPTER_WEIGHTS))
