"""Inference memory of a stack for each choice: dtype x int8 x offload.

The stack is built on the meta device (no weights read). For every component
the parameters split into those an int8 choice stores as int8 (the weights of
the linear layers :func:`mpm_framework.quantize.quantizable` accepts; an LLM's
output head stays in float, as the plugins keep it) and the rest. A row's
bytes are ``int8 weights x 1 + scales + rest x dtype bytes``, plus the KV cache
of the context and a working-memory allowance for one forward pass.

Offload places whole layers on the GPU until ``max_gpu_memory`` is used
(:mod:`.offload`, accelerate's ``infer_auto_device_map``) and the rest in CPU
memory. This is a plan: the placement is computed on the meta device; running
a placed model on a GPU was not exercised here (no GPU on the development
machine).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..quantize import quantizable
from .hardware import GiB

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass
class Split:
    """One component's parameters: int8-able linear weights, rows of those, the rest."""

    linear: int
    rows: int
    rest: int

    def bytes(self, dtype: str, quantize: str) -> int:
        size = DTYPE_BYTES[dtype]
        if quantize == "int8":  # int8 weights + one fp32 scale (and zero point) per output row
            return self.linear + 8 * self.rows + self.rest * size
        return (self.linear + self.rest) * size


@dataclass
class Choice:
    dtype: str
    quantize: str
    offload: bool
    weights: int  # all weights, wherever they live
    gpu: int  # weights on the GPU + KV cache + working memory
    cpu: int  # weights left in CPU memory (offload)
    fits: bool
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.dtype}{' + int8 linear' if self.quantize == 'int8' else ''}{' + offload' if self.offload else ''}"


@dataclass
class InferencePlan:
    splits: dict[str, Split]
    gpu_memory: int
    max_gpu_memory: int | None
    context_tokens: int
    kv_bytes_per_token: dict[str, int]  # per dtype
    choices: list[Choice] = field(default_factory=list)


def split_parameters(module: nn.Module, keep_float: tuple[nn.Module, ...] = ()) -> Split:
    """How ``module``'s parameters split between int8-able linear weights and the rest."""
    linear = rows = 0
    seen: set[int] = set()
    for sub in module.modules():
        if sub in keep_float or not quantizable(sub):
            continue
        weight = sub.weight
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        linear += weight.numel()
        rows += weight.shape[0]
    total = sum(p.numel() for p in module.parameters())
    return Split(linear, rows, total - linear)


def _output_head(llm: nn.Module) -> tuple[nn.Module, ...]:
    hf = getattr(llm, "hf", None)
    getter = getattr(hf, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    return (head,) if head is not None else ()


def kv_bytes_per_token(llm: nn.Module, dtype_bytes: int) -> int:
    """Keys and values of one token in every layer (the KV heads' width where the
    architecture says it, else the hidden size)."""
    config = getattr(getattr(llm, "hf", None), "config", None)
    layers = int(getattr(llm, "num_layers", 0) or getattr(config, "num_hidden_layers", 0) or 1)
    width = int(getattr(llm, "hidden_size", 0))
    if config is not None:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = getattr(text, "num_attention_heads", None)
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        head_dim = getattr(text, "head_dim", None) or (width // heads if heads else 0)
        if kv_heads and head_dim:
            width = kv_heads * head_dim
    return 2 * layers * width * dtype_bytes


def plan_inference(stack: nn.Module, gpu_memory: int, max_gpu_memory: int | None = None,
                   context_tokens: int = 2048, headroom: float = 0.9) -> InferencePlan:
    """Every choice's memory for ``stack`` (built on the meta device)."""
    from .offload import place_layers

    comps = {k: v for k, v in stack.components().items() if v is not None}
    splits = {name: split_parameters(m, _output_head(m) if name == "llm" else ()) for name, m in comps.items()}
    llm = comps.get("llm")
    kv = {d: kv_bytes_per_token(llm, b) if llm is not None else 0 for d, b in DTYPE_BYTES.items()}
    plan = InferencePlan(splits, gpu_memory, max_gpu_memory, context_tokens, kv)
    usable = int(gpu_memory * headroom)
    rows = [("fp32", "none"), ("fp16", "none"), ("bf16", "none"), ("fp32", "int8"), ("fp16", "int8")]
    for dtype, quantize in rows:
        weights = sum(s.bytes(dtype, quantize) for s in splits.values())
        extra = context_tokens * kv[dtype] + _working(stack, dtype)
        note = {("fp32", "int8"): "runs today on CPU (torch dynamic int8)",
                ("fp16", "int8"): "GPU int8 needs torchao (not a dependency yet): planned, not runnable"}.get(
            (dtype, quantize), "")
        plan.choices.append(Choice(dtype, quantize, False, weights, weights + extra, 0,
                                   weights + extra <= usable, note))
        if max_gpu_memory is not None and dtype == "fp16":
            budget = max(0, min(max_gpu_memory, usable) - extra)
            placed = place_layers(stack, budget, dtype, quantize)
            gpu = placed.gpu_bytes + extra
            plan.choices.append(Choice(dtype, quantize, True, weights, gpu, placed.cpu_bytes,
                                       gpu <= min(max_gpu_memory, usable),
                                       f"{placed.gpu_layers} of {placed.layers} blocks on the GPU" + (
                                           f"; {note}" if note else "")))
    return plan


def _working(stack: nn.Module, dtype: str) -> int:
    """One forward pass's largest temporaries at batch 1: the LLM's logits of
    one position chunk (vocab x 512 tokens, fp32) - a floor, not a bound."""
    llm = getattr(stack, "llm", None)
    vocab = int(getattr(llm, "vocab_size", 0) or 0)
    return vocab * 512 * 4


def format_inference_plan(plan: InferencePlan) -> str:
    def gib(b: int) -> str:
        return f"{b / GiB:7.2f} GiB"

    lines = [f"Inference memory, batch 1, {plan.context_tokens} tokens of context, on a "
             f"{plan.gpu_memory / GiB:.0f} GiB card"
             + (f", offload at --max-gpu-memory {plan.max_gpu_memory / GiB:g} GiB" if plan.max_gpu_memory else ""),
             "", f"{'component':<12}{'int8-able linear':>18}{'other params':>16}"]
    for name, s in plan.splits.items():
        lines.append(f"{name:<12}{s.linear:>18,}{s.rest:>16,}")
    lines += ["", f"{'choice':<30}{'weights':>12}{'device':>12}{'offloaded':>12}  fits  note"]
    for c in plan.choices:
        lines.append(f"{c.label:<30}{gib(c.weights):>12}{gib(c.gpu):>12}{gib(c.cpu):>12}  "
                     f"{'yes ' if c.fits else 'no  '}  {c.note}")
    lines += ["", "device = weights on the device + KV cache (keys and values of every layer for the context) + "
              "the logits of 512 positions; offloaded = weights left in CPU memory (mmap-backed when loaded "
              "in place). 'fits' compares device with the card (90% usable) or --max-gpu-memory.",
              "Offload placement is computed with accelerate on the meta device; not run on a GPU here."]
    return "\n".join(lines)
