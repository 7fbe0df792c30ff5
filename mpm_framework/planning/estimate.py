"""The plan: exact parameter counts, per-GPU memory and a step-time estimate."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from ..contracts.llm import PivotLLM
from .activations import formula_bytes, traced_saved_bytes
from .flops import needs_backward, step_flops
from .hardware import GiB, Hardware, Precision


@dataclass
class Plan:
    stage: str
    counts: dict[str, tuple[int, int]]  # component -> (trainable, total)
    hardware: Hardware
    precision: Precision
    micro_batch: int
    seq_len: int
    grad_accum: int
    gradient_checkpointing: bool
    weights: int
    grads: int
    optimizer: int
    activations: int
    working: int  # backward working memory (see activations.py)
    activation_method: str
    cpu_offloaded: int
    step_flops: float
    achieved_tflops: float
    suggestions: list[tuple[str, int, bool]] = field(default_factory=list)

    @property
    def step_bytes(self) -> int:
        """What a training step adds to the resident weights and optimizer state.

        Backward frees each layer's activations as it writes that layer's
        gradients, so the peak is where the larger of the two sits (activations
        plus working memory at its start, all gradients at its end), not their sum."""
        return max(self.activations + self.working, self.grads)

    @property
    def gpu_bytes(self) -> int:
        return self.weights + self.optimizer + self.step_bytes

    @property
    def usable_bytes(self) -> int:
        return int(self.hardware.gpu_memory * self.hardware.headroom)

    @property
    def fits(self) -> bool:
        return self.gpu_bytes <= self.usable_bytes

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.seq_len * self.grad_accum * self.hardware.world_size

    @property
    def step_seconds(self) -> float:
        per_gpu = self.step_flops * self.grad_accum / max(self.achieved_tflops * 1e12, 1.0)
        return per_gpu


def count_parameters(stack: nn.Module) -> dict[str, tuple[int, int]]:
    out = {}
    for name, module in stack.components().items():
        if module is None:
            continue
        params = list(module.parameters())
        out[name] = (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
    return out


def stage_trainable(stack: nn.Module, cfg) -> tuple[list[str], list[str]]:
    """The freeze sets the trainer would use: stage defaults < ``run.trainable``/``run.frozen``."""
    from ..training.stages import get_stage, resolve_freeze_sets

    return resolve_freeze_sets(get_stage(cfg.run.stage), stack, cfg)


def state_bytes(counts, precision: Precision, hw: Hardware) -> tuple[int, int, int, int]:
    """(weights, grads, optimizer) on each GPU and bytes offloaded to CPU, per ZeRO stage."""
    total = sum(n for _, n in counts.values())
    trainable = sum(t for t, _ in counts.values())
    world = hw.world_size
    weights = total * precision.weight
    grads = trainable * precision.grad
    optimizer = trainable * precision.optimizer
    if hw.zero_stage >= 1:
        optimizer //= world
    if hw.zero_stage >= 2:
        grads //= world
    if hw.zero_stage >= 3:
        weights //= world
    offloaded = 0
    if hw.offload:
        offloaded += optimizer
        optimizer = 0
        if hw.zero_stage >= 3:
            offloaded += weights
            weights = 0
    return weights, grads, optimizer, offloaded


def _component_layers(module: nn.Module, hidden: int) -> int:
    if isinstance(module, PivotLLM):  # the LLM declares its depth; others are estimated
        return int(module.num_layers)
    per_layer = 12 * hidden * hidden  # attention 4h^2 + MLP 8h^2
    return max(1, round(sum(p.numel() for p in module.parameters()) / per_layer))


def _tokens(stack, name: str, micro_batch: int, seq_len: int) -> int:
    if name == "llm":
        return micro_batch * seq_len
    if name == "vision":
        v = stack.vision
        return micro_batch * v.num_input_tokens
    if name == "connector":
        return micro_batch * stack.vision.num_output_tokens
    return micro_batch * seq_len


def formula_activations(stack, micro_batch: int, seq_len: int, precision: Precision, ckpt: bool) -> int:
    total = 0
    comps = stack.components()
    for name in ("vision", "llm"):
        module = comps.get(name)
        if module is None or not _needs_backward(stack, name):
            continue
        hidden = module.hidden_size
        total += formula_bytes(_tokens(stack, name, micro_batch, seq_len), hidden,
                               _component_layers(module, hidden), precision.weight, ckpt)
    return total


def _needs_backward(stack, name: str) -> bool:
    """Autograd goes through a component if it or anything upstream trains."""
    return needs_backward(stack.components(), name)


def traced_activations(stack, micro_batch: int, seq_len: int) -> tuple[int, int]:
    """Bytes saved for backward by one forward with a synthetic batch of the
    planned shape, on the device the stack lives on (the CPU, or the meta device
    where no memory is used and data-dependent code cannot run)."""
    comps = {k: v for k, v in stack.components().items() if v is not None}
    device = next(stack.parameters()).device
    if stack.kind == "chat":
        batch = stack.llm.synthetic_batch(micro_batch, seq_len, stack.num_image_tokens)
        size = stack.vision.image_size
        batch["pixel_values"] = torch.randn(micro_batch, 3, size, size)
        batch = {k: v.to(device) for k, v in batch.items()}
        run = lambda: stack(batch).loss  # noqa: E731
    else:
        dec = stack.decoder
        with torch.device(device):
            images = torch.rand(micro_batch, 3, dec.image_size, dec.image_size) * 2 - 1
            cond = torch.randn(micro_batch, seq_len, stack.llm.hidden_size)
            mask = torch.ones(micro_batch, seq_len)
        run = lambda: dec.training_loss(images, cond, mask)  # noqa: E731
    per_module, _ = traced_saved_bytes(comps, run)
    largest = per_module.pop("largest")
    return sum(per_module.values()), largest


def flops_per_step(stack, micro_batch: int, seq_len: int) -> float:
    """Model FLOPs of one micro-batch of ``micro_batch`` sequences of ``seq_len``
    tokens, labels on the last quarter of each (the answer share of
    ``PivotLLM.synthetic_batch``, which the traced activations use too); see
    :func:`.flops.step_flops` for what is counted."""
    label_tokens = micro_batch * (seq_len // 4) if stack.kind != "paint" else 0
    return float(step_flops(stack, [seq_len] * micro_batch, label_tokens))


def _meta_or_formula(stack, micro_batch: int, seq_len: int, precision: Precision,
                     ckpt: bool) -> tuple[int, int, str]:
    """(activations, backward working memory, method): traced on the meta device
    when the components allow it (no data-dependent Python control flow), else
    the transformer formula with the logits of a quarter of the tokens (the
    answer share of ``synthetic_batch``) as the largest tensor."""
    formula = formula_activations(stack, micro_batch, seq_len, precision, ckpt)
    try:
        traced, largest = traced_activations(stack, micro_batch, seq_len)
    except Exception:  # data-dependent code cannot run on the meta device
        vocab = stack.llm.vocab_size if _needs_backward(stack, "llm") else 0
        return formula, 2 * micro_batch * (seq_len // 4) * vocab * 4, "formula"
    traced, working = traced * precision.weight // 4, 2 * largest * precision.weight // 4
    if ckpt:
        full = formula_activations(stack, micro_batch, seq_len, precision, False)
        if full:  # transformer parts: scale by the formula's checkpointing ratio
            traced = int(traced * formula / full)
        return traced, working, "traced on meta" + (" (checkpointing scaled by formula)" if full else "")
    return traced, working, "traced on meta"


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def make_plan(
    cfg,
    hardware: Hardware,
    *,
    stage: str | None = None,
    micro_batch: int | None = None,
    seq_len: int | None = None,
    gradient_checkpointing: bool | None = None,
    achieved_tflops: float = 120.0,
    trace: str = "auto",
    suggest: bool = True,
) -> Plan:
    """Plan ``cfg`` (a resolved config) on ``hardware``; nothing is allocated
    unless activations are traced on a model that fits the host easily."""
    from ..composition import build_stack
    from ..training.recipes import stage_config

    cfg = stage_config(cfg, stage)  # the recipe's stages.<stage> overrides, validated
    stage = cfg.run.stage
    micro_batch = micro_batch or cfg.run.batch_size
    seq_len = seq_len or cfg.data.max_length
    ckpt = cfg.run.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    precision = Precision.from_name(cfg.run.precision)

    stack = build_stack(cfg, meta=True)
    trainable, frozen = stage_trainable(stack, cfg)
    stack.set_trainable(trainable, frozen)
    counts = count_parameters(stack)
    weights, grads, optimizer, offloaded = state_bytes(counts, precision, hardware)
    total_params = sum(n for _, n in counts.values())

    can_trace = total_params * 4 * 3 < _host_memory() // 4
    use_trace = trace == "always" or (trace == "auto" and can_trace)
    if use_trace:
        real = build_stack(cfg)
        real.set_trainable(trainable, frozen)
        traced, largest = traced_activations(real, micro_batch, seq_len)
        traced, working = traced * precision.weight // 4, 2 * largest * precision.weight // 4
        if ckpt:  # checkpointing keeps layer inputs only: scale by the formula's ratio
            full = formula_activations(real, micro_batch, seq_len, precision, False)
            part = formula_activations(real, micro_batch, seq_len, precision, True)
            traced = int(traced * part / max(full, 1))
        activations, method = traced, "traced" + (" (checkpointing scaled by formula)" if ckpt else "")
        del real
    else:
        activations, working, method = _meta_or_formula(stack, micro_batch, seq_len, precision, ckpt)

    plan = Plan(
        stage=stage, counts=counts, hardware=hardware, precision=precision, micro_batch=micro_batch,
        seq_len=seq_len, grad_accum=cfg.run.grad_accum, gradient_checkpointing=ckpt,
        weights=weights, grads=grads, optimizer=optimizer, activations=activations, working=working,
        activation_method=method, cpu_offloaded=offloaded,
        step_flops=flops_per_step(stack, micro_batch, seq_len), achieved_tflops=achieved_tflops,
    )
    if suggest and not plan.fits:
        plan.suggestions = _suggestions(cfg, plan, achieved_tflops)
    return plan


def _suggestions(cfg, plan: Plan, tflops: float) -> list[tuple[str, int, bool]]:
    hw = plan.hardware
    options: list[tuple[str, dict, Hardware]] = []
    if not plan.gradient_checkpointing:
        options.append(("gradient checkpointing (run.gradient_checkpointing=true)",
                        {"gradient_checkpointing": True}, hw))
    if hw.zero_stage < 3:
        options.append(("ZeRO-3 (--zero 3)", {}, dataclasses.replace(hw, zero_stage=3)))
    if not hw.offload:
        options.append(("ZeRO-Offload (--offload)", {}, dataclasses.replace(hw, offload=True)))
    if plan.micro_batch > 1:
        options.append(("micro-batch 1 (run.batch_size=1, raise run.grad_accum)", {"micro_batch": 1}, hw))
    options.append(("all of the above", {"gradient_checkpointing": True, "micro_batch": 1},
                    dataclasses.replace(hw, zero_stage=3, offload=True)))
    out = []
    for label, kwargs, hardware in options:
        alt = make_plan(cfg, hardware, stage=plan.stage, micro_batch=kwargs.get("micro_batch", plan.micro_batch),
                        seq_len=plan.seq_len,
                        gradient_checkpointing=kwargs.get("gradient_checkpointing", plan.gradient_checkpointing),
                        achieved_tflops=tflops, trace="never", suggest=False)
        out.append((label, alt.gpu_bytes, alt.fits))
    if plan.counts.get("llm", (0, 0))[0] > 0:
        out.append(("LoRA on the LLM (run.lora.r=8) trains ~1% of its weights; "
                    "grads and optimizer state shrink accordingly", -1, False))
    return out


def format_plan(plan: Plan) -> str:
    def gib(b: int) -> str:
        return f"{b / GiB:8.2f} GiB" if b >= GiB // 10 else f"{b / 2**20:8.2f} MiB"

    hw = plan.hardware
    lines = [f"Plan for stage '{plan.stage}' on {hw.nodes} node(s) x {hw.gpus_per_node} GPU(s), "
             f"{hw.gpu_memory / GiB:.0f} GiB each, ZeRO-{hw.zero_stage}{' + offload' if hw.offload else ''}, "
             f"{plan.precision.name}", "",
             f"{'component':<12}{'trainable':>16}{'total':>18}"]
    for name, (t, n) in plan.counts.items():
        lines.append(f"{name:<12}{t:>16,}{n:>18,}")
    t_all, n_all = sum(t for t, _ in plan.counts.values()), sum(n for _, n in plan.counts.values())
    lines += [f"{'all':<12}{t_all:>16,}{n_all:>18,}", "", "per-GPU memory:",
              f"  weights          {gib(plan.weights)}",
              f"  gradients        {gib(plan.grads)}",
              f"  optimizer state  {gib(plan.optimizer)}",
              f"  activations      {gib(plan.activations)}   (micro-batch {plan.micro_batch} x "
              f"{plan.seq_len} tokens, checkpointing {'on' if plan.gradient_checkpointing else 'off'}, "
              f"{plan.activation_method})",
              f"  backward working {gib(plan.working)}   (twice the largest saved tensor)",
              f"  peak             {gib(plan.gpu_bytes)}   = weights + optimizer + max(activations + "
              f"working, gradients), of {gib(plan.usable_bytes)} usable ({hw.headroom:.0%} of the card)"]
    if plan.cpu_offloaded:
        lines.append(f"  offloaded to CPU {gib(plan.cpu_offloaded)} per GPU")
    lines += ["", f"tokens per optimizer step: {plan.tokens_per_step:,}",
              f"model FLOPs per GPU per step: {plan.step_flops * plan.grad_accum:.3e} -> "
              f"~{plan.step_seconds:.2f} s/step at an assumed {plan.achieved_tflops:g} TFLOP/s achieved per GPU",
              ""]
    lines.append("FITS." if plan.fits else "DOES NOT FIT.")
    for label, size, fits in plan.suggestions:
        if size < 0:
            lines.append(f"  - {label}")
        else:
            lines.append(f"  - {label}: {size / GiB:.2f} GiB -> {'fits' if fits else 'still too large'}")
    return "\n".join(lines)
