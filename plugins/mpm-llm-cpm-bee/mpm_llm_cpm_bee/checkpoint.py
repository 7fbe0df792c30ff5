"""Reading and writing CPM-Bee weights in the official key layout.

Accepted: the official ``.pt``/``.bin`` files (read with ``weights_only=True``),
safetensors files, VisCPM checkpoints (the LLM under ``llm.``) and the Hugging
Face port (under ``cpmbee.``, with a tied ``lm_head.weight``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from mpm_framework.config.choices import torch_dtype
from mpm_framework.errors import MPMError

from .config import CPMBeeArch
from .model import expected_keys

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".bin", ".pth")
PREFIXES = ("llm.", "cpmbee.")
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(self_att|ffn)\.")


class CheckpointError(MPMError):
    pass


def find_checkpoint(path: str | Path) -> tuple[Path, Path | None, Path | None]:
    """(weights file, vocab.txt or None, config.json or None) for a file or a directory."""
    p = Path(path)
    if p.is_file():
        vocab = p.parent / "vocab.txt"
        config = p.parent / "config.json"
        return p, vocab if vocab.is_file() else None, config if config.is_file() else None
    if not p.is_dir():
        raise CheckpointError(f"CPM-Bee checkpoint not found: {p}")
    files = sorted(f for f in p.iterdir() if f.suffix in CHECKPOINT_SUFFIXES)
    if not files:
        raise CheckpointError(
            f"no checkpoint in {p}: expected a file ending in {', '.join(CHECKPOINT_SUFFIXES)}")
    preferred = [f for f in files if f.suffix == ".safetensors"] or files
    if len(preferred) > 1:
        names = ", ".join(f.name for f in preferred)
        raise CheckpointError(f"{p} holds several checkpoints ({names}): point model.llm.path at one")
    vocab, config = p / "vocab.txt", p / "config.json"
    return preferred[0], vocab if vocab.is_file() else None, config if config.is_file() else None


def read_state_dict(path: str | Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Raw tensors of a checkpoint file, nothing renamed; floating-point ones as
    ``dtype`` when given (a safetensors file is then read tensor by tensor, so a
    conversion never holds the file's copy and the converted one at once)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from mpm_framework.weight_files import read_safetensors

        return read_safetensors(p, dtype)
    try:
        try:  # memory-mapped: a 10B file is not copied into RAM before use
            data = torch.load(str(p), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc).lower():
                raise
            data = torch.load(str(p), map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as exc:  # a pickle that is not plain tensors is refused, never executed
        raise CheckpointError(f"cannot read {p} with weights_only=True: {exc}") from None
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(data, dict) and wrapper in data and isinstance(data[wrapper], dict):
            data = data[wrapper]
    if not isinstance(data, dict):
        raise CheckpointError(f"{p} does not hold a state dict")
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    return tensors


def llm_state_dict(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The LLM part under official names: a ``llm.``/``cpmbee.`` prefix is
    stripped when the official keys live under it; other keys (VisCPM's vision
    part) are dropped then; a tied ``lm_head.weight`` is dropped."""
    if "input_embedding.weight" not in raw:
        for prefix in PREFIXES:
            if prefix + "input_embedding.weight" in raw:
                raw = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
                break
    if "lm_head.weight" in raw and "input_embedding.weight" in raw:
        if torch.equal(raw["lm_head.weight"], raw["input_embedding.weight"]):
            raw = {k: v for k, v in raw.items() if k != "lm_head.weight"}
    return raw


def infer_arch(state: dict[str, torch.Tensor], base: CPMBeeArch | None = None) -> CPMBeeArch:
    """The architecture a state dict implies (sizes from shapes, pruned blocks from
    which keys exist); bucket settings come from ``base`` (default: official)."""
    try:
        vocab, dim = state["input_embedding.weight"].shape
        table = state["position_bias.relative_attention_bias"]
    except KeyError as exc:
        raise CheckpointError(f"not a CPM-Bee checkpoint: it lacks {exc.args[0]}") from None
    num_heads = table.shape[1]
    layers: dict[int, set[str]] = {}
    for key in state:
        m = _LAYER.match(key)
        if m:
            layers.setdefault(int(m.group(1)), set()).add(m.group(2))
    if not layers:
        raise CheckpointError("not a CPM-Bee checkpoint: no encoder.layers.* keys")
    num_layers = max(layers) + 1
    q = next((state[f"encoder.layers.{i}.self_att.self_attention.project_q.weight"]
              for i in sorted(layers) if "self_att" in layers[i]), None)
    ff = next((state[f"encoder.layers.{i}.ffn.ffn.w_in.w_0.weight"]
               for i in sorted(layers) if "ffn" in layers[i]), None)
    base = base or CPMBeeArch(vocab, dim, 1, 1, num_heads, 1)
    mask = tuple(("self_att" not in layers.get(i, set()), "ffn" not in layers.get(i, set()))
                 for i in range(num_layers))
    segment_buckets = table.shape[0] - base.position_bias_num_buckets
    return base.replace(
        vocab_size=vocab, dim_model=dim, num_layers=num_layers, num_heads=num_heads,
        dim_head=(q.shape[0] // num_heads) if q is not None else base.dim_head,
        dim_ff=ff.shape[0] if ff is not None else base.dim_ff,
        position_bias_num_segment_buckets=segment_buckets,
        mask_modules=mask if any(a or f for a, f in mask) else None,
    )


def check_keys(state: dict[str, torch.Tensor], arch: CPMBeeArch, source: str, strict: bool = True) -> None:
    """Raise a CheckpointError that lists missing and unexpected keys."""
    expected = expected_keys(arch)
    missing = [k for k in expected if k not in state]
    unexpected = sorted(set(state) - set(expected))
    if missing or (strict and unexpected):

        def listing(keys: list[str]) -> str:
            shown = ", ".join(keys[:8])
            return shown + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {listing(missing)}")
        if strict and unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {listing(unexpected)}")
        raise CheckpointError(
            f"{source} does not match the CPM-Bee layout ({'; '.join(parts)}). Official keys look like "
            "input_embedding.weight, encoder.layers.0.self_att.self_attention.project_q.weight "
            "(VisCPM files: llm.input_embedding.weight)."
        )


def load_checkpoint(path: str | Path, arch: CPMBeeArch | None = None,
                    strict: bool = True) -> tuple[dict[str, torch.Tensor], CPMBeeArch]:
    """(state dict under official names, its architecture). With ``arch`` the file
    must match it; without, the architecture is read from a ``config.json``
    beside the file or inferred from the tensors."""
    weights, _, config = find_checkpoint(path)
    state = llm_state_dict(read_state_dict(weights))
    if arch is None:
        arch = CPMBeeArch.from_json_file(config) if config is not None else infer_arch(state)
    check_keys(state, arch, str(weights), strict=strict)
    for key, expected_shape in _shapes(arch).items():
        if tuple(state[key].shape) != expected_shape:
            raise CheckpointError(
                f"{weights}: {key} has shape {tuple(state[key].shape)}, the configured model expects "
                f"{expected_shape} (is model.llm.size right?)")
    return state, arch


def _shapes(arch: CPMBeeArch) -> dict[str, tuple[int, ...]]:
    d, inner, ff = arch.dim_model, arch.num_heads * arch.dim_head, arch.dim_ff
    shapes: dict[str, tuple[int, ...]] = {}
    for key in expected_keys(arch):
        if key == "input_embedding.weight":
            shapes[key] = (arch.vocab_size, d)
        elif key == "position_bias.relative_attention_bias":
            shapes[key] = (arch.position_bias_num_buckets + arch.position_bias_num_segment_buckets,
                           arch.num_heads)
        elif key.endswith(("project_q.weight", "project_k.weight", "project_v.weight")):
            shapes[key] = (inner, d)
        elif key.endswith("attention_out.weight"):
            shapes[key] = (d, inner)
        elif key.endswith(("w_0.weight", "w_1.weight")):
            shapes[key] = (ff, d)
        elif key.endswith("w_out.weight"):
            shapes[key] = (d, ff)
        else:
            shapes[key] = (d,)
    return shapes


def save_safetensors(state: dict[str, torch.Tensor], arch: CPMBeeArch, out_dir: str | Path,
                     dtype: torch.dtype | None = None, vocab: Path | None = None, progress: bool = False) -> Path:
    """Write ``model.safetensors`` + the official ``config.json`` (+ ``vocab.txt``)
    into ``out_dir``; the weights file is written to a temporary name first."""
    from safetensors.torch import save_file
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key in tqdm(list(state), desc="tensors", unit="tensor", disable=not progress):
        value = state[key]
        tensors[key] = (value.to(dtype) if dtype is not None else value).contiguous()
    tmp = out / "model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt", "model": "cpm-bee"})
    tmp.replace(out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(arch.to_official(), indent=2) + "\n", encoding="utf-8")
    if vocab is not None and vocab.resolve() != (out / "vocab.txt").resolve():
        (out / "vocab.txt").write_bytes(vocab.read_bytes())
    return out / "model.safetensors"


def convert(src: str | Path, dst: str | Path, dtype: str | None = None, vocab: str | Path | None = None,
            progress: bool = False) -> Path:
    """Official (or VisCPM) checkpoint -> a safetensors directory in the official layout."""
    state, arch = load_checkpoint(src)
    _, found_vocab, _ = find_checkpoint(src)
    vocab_path = Path(vocab) if vocab is not None else found_vocab
    return save_safetensors(state, arch, dst, torch_dtype(dtype, "--dtype") if dtype else None, vocab_path, progress)
