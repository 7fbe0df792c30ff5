"""Model FLOPs of one training step: the count behind ``mpm plan``'s step time
and the benchmarks' MFU (``benchmarks/bench_support.model_flops`` calls it).

What is counted, forward and backward, is the matmul work the loss needs:

* every ``nn.Linear`` once per token its component sees (2·in·out each), the
  LM head only on label tokens; embedding lookups are table reads, not matmuls;
* the vision encoder's convolutions (the patch embedding) once per output
  position on the image, with weight gradients only: their input is pixels;
* attention scores, QKᵀ and PV (2·T·T·d each per layer and sequence), whose
  backward is four such products (dV, dP, dQ, dK), five where a flash kernel
  recomputes QKᵀ as torch's FLOP counter does.

Backward adds the input gradients of a layer once anything before it trains
(modules in registration order, upstream components first) and the weight
gradients of trainable weights only.
Norms, activations, softmax and biases are not counted. Components the formula
does not model (an image decoder) fall back to 2·N per token and pass.

Everything is read from declared members (``PivotLLM.hidden_size/vocab_size``,
``VisionEncoder.hidden_size/num_input_tokens/num_output_tokens/image_size``,
``Stack.kind/components``) and the modules themselves (the layer stack is the
longest ``nn.ModuleList``), so a stack built on the meta device can be counted.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..contracts.llm import PivotLLM

# Upstream-to-downstream order of the components in each stack.
ORDER = ("vision", "connector", "llm", "decoder")


def needs_backward(components: dict[str, nn.Module | None], name: str) -> bool:
    """Autograd goes through a component if it or anything upstream trains."""
    upstream = [c for c in ORDER if components.get(c) is not None]
    idx = upstream.index(name)
    return any(p.requires_grad for c in upstream[: idx + 1] for p in components[c].parameters())


def _trains_upstream(components: dict[str, nn.Module | None], name: str) -> bool:
    """Anything strictly upstream of ``name`` trains (its input needs gradients)."""
    upstream = [c for c in ORDER if components.get(c) is not None]
    return any(p.requires_grad for c in upstream[: upstream.index(name)] for p in components[c].parameters())


def layer_stack(module: nn.Module) -> nn.ModuleList | None:
    """The layer stack of a component: its longest ``nn.ModuleList`` (the
    transformer layers in every encoder and LLM we ship)."""
    lists = [m for m in module.modules() if isinstance(m, nn.ModuleList)]
    return max(lists, key=len) if lists else None


def attention_flops(seq_lens: Sequence[int], hidden: int, backward: bool, flash_recompute: bool = False) -> int:
    """Score-matrix FLOPs of one attention layer of width ``hidden`` over
    sequences of ``seq_lens`` tokens (each attends only to itself)."""
    products = 2 + ((5 if flash_recompute else 4) if backward else 0)
    return sum(products * 2 * t * t * hidden for t in seq_lens)


def _own_params_train(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters(recurse=False))


def component_flops(module: nn.Module, seq_lens: Sequence[int], hidden: int, grad_in: bool, *,
                    image_size: int = 0, skip_out_features: int | None = None,
                    flash_recompute: bool = False) -> tuple[int, bool]:
    """(FLOPs, whether gradients reach the skipped layer) of ``module`` on
    sequences of ``seq_lens`` tokens; ``grad_in``: its input needs gradients.

    Modules are taken in registration order, which is forward order in the
    encoders and LLMs we ship: a layer computes input gradients once anything
    before it (or upstream, ``grad_in``) trains, weight gradients when it
    trains. Each block of the layer stack adds its attention scores, with a
    backward when gradients flow into or through it. Convolutions see the
    ``image_size`` image (patch embeddings), so they need no input gradients. Linear layers with
    ``skip_out_features`` outputs (the LM head) are left to the caller."""
    tokens = sum(seq_lens)
    blocks = layer_stack(module)
    block_ids = {id(b) for b in blocks} if blocks is not None else set()
    flag, total, flag_at_skip = grad_in, 0, grad_in
    for m in module.modules():
        if id(m) in block_ids:
            back = flag or any(p.requires_grad for p in m.parameters())
            total += attention_flops(seq_lens, hidden, back, flash_recompute)
        if isinstance(m, nn.Linear):
            if m.out_features == skip_out_features:
                flag_at_skip = flag
            else:
                w = m.weight.numel()
                total += 2 * tokens * w * (1 + int(flag) + int(m.weight.requires_grad))
        elif isinstance(m, nn.Conv2d):
            k, s, d = m.kernel_size[0], m.stride[0], m.dilation[0]
            pad = m.padding[0] if isinstance(m.padding, tuple) else 0
            positions = ((image_size + 2 * pad - d * (k - 1) - 1) // s + 1) ** 2
            # one image per sequence, and the input is the image: weight gradients only
            total += 2 * len(seq_lens) * positions * m.weight.numel() * (1 + int(m.weight.requires_grad))
        flag = flag or _own_params_train(m)
    return total, flag_at_skip


def step_flops(stack, seq_lens: Sequence[int], label_tokens: int, *, num_images: int | None = None,
               flash_recompute: bool = False) -> int:
    """Model FLOPs of one forward + backward of ``stack`` on sequences of
    ``seq_lens`` tokens (image slots included) with ``label_tokens`` labelled
    tokens and, for a chat stack, ``num_images`` images (one per sequence)."""
    comps = {k: v for k, v in stack.components().items() if v is not None}
    total = 0
    if stack.kind == "chat":
        images = len(seq_lens) if num_images is None else num_images
        vision = stack.vision
        flops, _ = component_flops(vision, [vision.num_input_tokens] * images, vision.hidden_size, False,
                                   image_size=vision.image_size, flash_recompute=flash_recompute)
        total += flops
        if "connector" in comps:
            flops, _ = component_flops(comps["connector"], [vision.num_output_tokens] * images, 0,
                                       _trains_upstream(comps, "connector"))
            total += flops
    llm: PivotLLM = stack.llm
    flops, head_grad_in = component_flops(llm, seq_lens, llm.hidden_size, _trains_upstream(comps, "llm"),
                                          skip_out_features=llm.vocab_size, flash_recompute=flash_recompute)
    total += flops
    head = [m for m in llm.modules() if isinstance(m, nn.Linear) and m.out_features == llm.vocab_size]
    head_trains = any(m.weight.requires_grad for m in head)
    total += 2 * label_tokens * llm.hidden_size * llm.vocab_size * (1 + int(head_grad_in) + int(head_trains))
    tokens = sum(seq_lens)
    for name, module in comps.items():
        if name in ("vision", "connector", "llm"):
            continue
        # not modelled (an image decoder): 2·N per token and pass
        params = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        back = needs_backward(comps, name)
        total += 2 * tokens * (params + (params + trainable if back else 0))
    return total
