"""What the benchmark suites share: sizes, the two stacks with identical weights,
batches of captions, device handling, FLOP counting and the matmul peak.

Ours is a ChatStack composed from the real plugins (``llama`` + ``clip`` +
``mlp2x_gelu``); the peer is Hugging Face's ``LlavaForConditionalGeneration``
built with the same sizes, into which our weights are copied, so both compute
the same function (checked once per build, outside any timed region).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

# -- sizes ---------------------------------------------------------------------------

# The "small" config: LLM width 512 x 8 layers with a 32k vocabulary,
# vision 224 px / 16 px patches, width 384 x 6 layers.
SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "llm": dict(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_layers=8, num_heads=8,
                    num_kv_heads=8, max_position_embeddings=1024),
        "vision": dict(image_size=224, patch_size=16, hidden_size=384, intermediate_size=1536, num_layers=6,
                       num_heads=6),
        "train_batch": 8,
    },
    # CI smoke runs (--benchmark-disable) exercise every code path once on this
    # reduced config; numbers never come from it.
    "smoke": {
        "llm": dict(vocab_size=32000, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                    num_kv_heads=2, max_position_embeddings=1024),
        "vision": dict(image_size=224, patch_size=16, hidden_size=32, intermediate_size=64, num_layers=2,
                       num_heads=4),
        "train_batch": 4,  # enough for packing to merge (and reorder) samples
    },
}

CAPTION_TOKENS = (8, 40)  # caption lengths in tokens, drawn uniformly (seeded)
NEW_TOKENS = 64  # generation benchmarks
WORDS = ("a", "the", "red", "small", "dog", "man", "woman", "sits", "on", "bench", "near", "old", "stone",
         "bridge", "two", "children", "play", "with", "ball", "in", "park", "green", "field", "under",
         "blue", "sky", "car", "parked", "street", "of", "city", "white", "cat", "window", "sleeping")


def device() -> torch.device:
    return torch.device(os.environ.get("MPM_BENCH_DEVICE", "cpu"))


def on_gpu() -> bool:
    return device().type == "cuda"


def sync() -> None:
    if on_gpu():
        torch.cuda.synchronize()


def autocast():
    """bf16 autocast on a GPU (the trainer's run.precision=bf16); fp32 on the CPU."""
    import contextlib

    if on_gpu():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def attention_backends() -> list[str]:
    """sdpa everywhere; xformers also on a GPU (skipped by the suites when missing)."""
    return ["sdpa", "xformers"] if on_gpu() else ["sdpa"]


def xformers_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("xformers") is not None


def skip_unavailable(attn: str) -> None:
    import pytest

    if attn == "xformers" and not xformers_available():
        pytest.skip("xformers is not installed")


def versions() -> dict[str, str]:
    import platform

    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__,
           "python": platform.python_version(), "threads": str(torch.get_num_threads())}
    if on_gpu():
        out["gpu"] = torch.cuda.get_device_name()
        out["cuda"] = str(torch.version.cuda)
    return out


# -- building the pair ------------------------------------------------------------------


def _register_plugins() -> None:
    """The llama and clip plugins, in-process when entry points are off."""
    import mpm_llm_llama.plugin as llama_plugin
    import mpm_vision_clip.plugin as clip_plugin

    from mpm_framework import plugins

    pm = plugins.get_plugin_manager()
    for module, name in ((llama_plugin, "mpm_llm_llama"), (clip_plugin, "mpm_vision_clip")):
        if not pm.is_registered(module) and pm.get_plugin(name) is None:
            plugins.register_plugin(module, name=name)


def build_ours(size: str, attn: str = "sdpa", answer_only_head: bool = True):
    """Our ChatStack of the given size, composed through the registry."""
    from mpm_framework.composition import compose

    _register_plugins()
    spec = SIZES[size]
    overrides = [f"model.llm.tiny.{k}={v}" for k, v in spec["llm"].items()]
    overrides += [f"model.vision.tiny.{k}={v}" for k, v in spec["vision"].items()]
    overrides += [f"model.llm.attn_implementation={attn}", f"model.llm.answer_only_head={answer_only_head}",
                  "model.vision.feature_layer=-2", "model.vision.keep_cls=false"]
    stack = compose(llm="llama", vision="clip", connector="mlp2x_gelu", lang=["en"], overrides=overrides)
    # Greedy decoding must run the full 64 tokens in both implementations: a zero
    # LM-head row gives the end tokens logit 0, below the maximum of 32k random logits.
    with torch.no_grad():
        head = stack.llm.hf.get_output_embeddings().weight
        for token in set(stack.llm.stop_token_ids):
            head[token].zero_()
    return stack


def build_peer(stack):
    """``LlavaForConditionalGeneration`` of the same sizes holding ``stack``'s weights."""
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    text = stack.llm.hf.config
    tower = stack.vision.model.config
    vision = CLIPVisionConfig(
        image_size=tower.image_size, patch_size=tower.patch_size, hidden_size=tower.hidden_size,
        intermediate_size=tower.intermediate_size, num_attention_heads=tower.num_attention_heads,
        num_hidden_layers=stack.vision.num_layers_total, hidden_act=tower.hidden_act,
    )
    config = LlavaConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), image_token_index=stack.llm.image_token_id,
        image_seq_length=stack.num_image_tokens, vision_feature_layer=stack.vision.feature_layer,
        vision_feature_select_strategy="full" if stack.vision.keep_cls else "default",
        projector_hidden_act="gelu", multimodal_projector_bias=True,
    )
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        peer = LlavaForConditionalGeneration(config)
    peer.config.text_config._attn_implementation = "sdpa"
    peer.config.vision_config._attn_implementation = "sdpa"
    copy_weights(stack, peer)
    return peer


def _vision_prefix(names) -> str:
    """The prefix before ``embeddings.patch_embedding.weight`` (transformers
    versions differ in whether a ``vision_model.`` level exists)."""
    key = next(n for n in names if n.endswith("embeddings.patch_embedding.weight"))
    return key[: -len("embeddings.patch_embedding.weight")]


def _peer_name(ours: str, ours_vision: str, peer_vision: str) -> str:
    if ours.startswith("llm.hf.model."):
        return "model.language_model." + ours[len("llm.hf.model."):]
    if ours.startswith("llm.hf.lm_head."):
        return "lm_head." + ours[len("llm.hf.lm_head."):]
    if ours.startswith(ours_vision):
        return peer_vision + ours[len(ours_vision):]
    if ours.startswith("connector.proj."):
        index, rest = ours[len("connector.proj."):].split(".", 1)
        return f"model.multi_modal_projector.linear_{1 if index == '0' else 2}.{rest}"
    raise KeyError(ours)


def copy_weights(stack, peer) -> None:
    """Our parameters into the peer; the peer's remaining tensors are the vision
    layers past the feature layer and its post-LayerNorm, which never reach the
    features (we prune them)."""
    target = peer.state_dict()
    source = stack.state_dict()
    prefixes = _vision_prefix(source), _vision_prefix(target)
    copied = set()
    with torch.no_grad():
        for name, tensor in source.items():
            key = _peer_name(name, *prefixes)
            if target[key].shape != tensor.shape:
                raise AssertionError(f"{name} -> {key}: {tuple(tensor.shape)} vs {tuple(target[key].shape)}")
            target[key].copy_(tensor)
            copied.add(key)
    kept = stack.vision.model.config.num_hidden_layers
    left = [k for k in target if k not in copied]
    unused = [k for k in left if "post_layernorm" in k or any(f".layers.{i}." in k for i in
                                                            range(kept, stack.vision.num_layers_total))]
    if sorted(left) != sorted(unused):
        raise AssertionError(f"peer weights not copied: {sorted(set(left) - set(unused))[:5]}")


def set_trainable_align(stack, peer) -> tuple[int, int]:
    """The align stage with the vision tower trainable: vision + connector train,
    the LLM is frozen. Returns the trainable parameter counts (ours, peer's
    parameters that receive gradients)."""
    counts = stack.set_trainable(["vision", "connector"])
    peer.requires_grad_(False)
    peer.model.vision_tower.requires_grad_(True)
    peer.model.multi_modal_projector.requires_grad_(True)
    ours = sum(t for t, _ in counts.values())
    peer_used = sum(p.numel() for n, p in peer.named_parameters() if p.requires_grad
                    and _reaches_features(n, stack))
    return ours, peer_used


def _reaches_features(peer_name: str, stack) -> bool:
    kept = stack.vision.model.config.num_hidden_layers
    if "post_layernorm" in peer_name:
        return False
    return not any(f".layers.{i}." in peer_name for i in range(kept, stack.vision.num_layers_total))


# -- data ---------------------------------------------------------------------------------


def caption(rng: random.Random, n_chars: int) -> str:
    """A caption of exactly ``n_chars`` ASCII characters (the random model's byte
    tokenizer makes one token per character)."""
    words: list[str] = []
    while len(" ".join(words)) < n_chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:n_chars].rstrip().ljust(n_chars, ".")


def captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [caption(rng, rng.randint(*CAPTION_TOKENS)) for _ in range(n)]


def pixels(n: int, image_size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, image_size, image_size, generator=gen)


@dataclass
class TrainBatch:
    encodings: list[Any]
    pixel_values: torch.Tensor
    padded: dict[str, torch.Tensor]
    packed: dict[str, torch.Tensor] | None = None
    label_tokens: int = 0
    tokens: int = 0  # real tokens (no padding)
    extra: dict[str, Any] = field(default_factory=dict)


def align_batch(stack, n: int, seed: int = 0, max_length: int = 512) -> TrainBatch:
    """``n`` caption samples collated by the align stage (padded and packed)."""
    from mpm_framework.contracts.prompt import IMAGE_MARKER, Turn
    from mpm_framework.training.stages import AlignStage, LMItem, PrepareContext

    rng = random.Random(seed)
    prompts = stack.languages["en"].caption_prompts
    encodings = [stack.encode_conversation([Turn("user", f"{IMAGE_MARKER}\n{rng.choice(prompts)}"),
                                            Turn("assistant", text)])
                 for text in captions(n, seed)]
    images = pixels(n, stack.vision.image_size, seed)
    items = [LMItem(enc, images[i], "en") for i, enc in enumerate(encodings)]
    stage = AlignStage()
    padded = stage.collate(items, PrepareContext(stack, None, max_length, packing=False))
    packed, extra = None, {}
    if stack.llm.supports_packing:
        packed = stage.collate(items, PrepareContext(stack, None, max_length, packing=True))
        order = pack_order(stack.llm, encodings, max_length)
        if order != sorted(order):
            # The llama plugin packs first-fit, which reorders samples, while the
            # align stage stacks images in sample order: images would land in
            # other samples' slots. Put them in packing order (reported as a bug).
            packed["pixel_values"] = images[order]
            extra["pack_reorders_samples"] = True
    return TrainBatch(encodings, images, padded, packed, stage.loss_units(padded),
                      sum(len(e) for e in encodings), extra)


def pack_order(llm, encodings, max_length: int) -> list[int]:
    """The order in which ``llm.pack_sequences`` places the samples, read from probe
    encodings of the same lengths whose tokens name their sample."""
    from mpm_framework.contracts.prompt import PromptEncoding

    base = 10  # clear of the special tokens
    probes = [PromptEncoding([base + i] * len(e), list(e.labels), list(e.image_mask))
              for i, e in enumerate(encodings)]
    order = []
    for row in llm.pack_sequences(probes, max_length):
        ids = row.input_ids
        starts = [0] + [t for t in range(1, len(ids)) if ids[t] != ids[t - 1]]
        order += [ids[t] - base for t in starts]
    if sorted(order) != list(range(len(encodings))):
        raise AssertionError(f"cannot read the packing order: {order}")
    return order


def to_device(batch: dict[str, Any]) -> dict[str, Any]:
    dev = device()
    return {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def peer_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    keys = ("input_ids", "attention_mask", "pixel_values", "labels")
    return {k: batch[k] for k in keys if k in batch}


# -- steps ----------------------------------------------------------------------------------


def ours_loss(stack, batch) -> torch.Tensor:
    return stack(batch).loss


def peer_loss(peer, batch) -> torch.Tensor:
    return peer(**peer_inputs(batch), use_cache=False).loss


def train_step(loss_fn: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer) -> float:
    """zero_grad, forward, backward, AdamW step (what the trainer does per micro-batch
    with grad_accum 1, without clipping)."""
    optimizer.zero_grad(set_to_none=True)
    with autocast():
        loss = loss_fn()
    loss.backward()
    optimizer.step()
    sync()
    return float(loss.detach())


def adamw(module: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-5, foreach=True)


# -- FLOPs and the machine's limit ----------------------------------------------------------


def _cpu_sdpa_flops() -> dict[Any, Any]:
    """FLOP formulas for the CPU flash-attention kernels, which torch's counter lacks."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten

    # The counter hands formulas the shapes of the tensor arguments.
    def forward(query, key, value, *args, out_val=None, **kwargs):
        return fc.sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_val=None, **kwargs):
        return fc.sdpa_backward_flop_count(grad_out, query, key, value)

    return {aten._scaled_dot_product_flash_attention_for_cpu: forward,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}


def counted_flops(fn: Callable[[], Any]) -> int:
    """Matmul and attention FLOPs ``fn`` executes (forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_cpu_sdpa_flops())
    with counter:
        fn()
    return int(counter.get_total_flops())


def model_flops(stack, batch: TrainBatch, flash_recompute: bool = False) -> int:
    """Model FLOPs of one align step (vision + connector train, LLM frozen) on
    ``batch``, samples taken one by one without padding: the planner's count
    (:func:`mpm_framework.planning.flops.step_flops`: matmuls and attention,
    forward and backward, only the work the loss needs -- the LM head where a
    label exists, and for the frozen LLM the gradients of its inputs but not of
    its weights). Attention counts the full T x T score matrix (as torch's FLOP
    counter does); norms, activations and softmax are not counted.
    ``flash_recompute`` adds the score matrix a flash-attention backward
    recomputes (torch's counter includes it), which is how the smoke run checks
    this formula against :func:`counted_step_flops` exactly."""
    from mpm_framework.planning.flops import step_flops

    return step_flops(stack, [len(enc) for enc in batch.encodings], batch.label_tokens,
                      flash_recompute=flash_recompute)


def counted_step_flops(stack, batch: TrainBatch) -> int:
    """What torch's FLOP counter sees for the same samples run one by one (slow:
    the smoke run uses it to check :func:`model_flops`)."""
    from mpm_framework.training.stages import AlignStage, LMItem, PrepareContext

    stage = AlignStage()
    total = 0
    for i, enc in enumerate(batch.encodings):
        one = stage.collate([LMItem(enc, batch.pixel_values[i], "en")],
                            PrepareContext(stack, None, 1 << 16, packing=False))
        one = {k: v.to(stack.device) for k, v in one.items()}

        def run(one=one):
            with autocast():
                loss = stack(one).loss
            loss.backward()

        total += counted_flops(run)
    stack.zero_grad(set_to_none=True)
    return total


def matmul_peak(seconds: float = 1.0) -> dict[str, float]:
    """The machine's measured ``torch.mm`` throughput (GFLOP/s): the best of
    repeated square products of two sizes, in the dtype the training step
    computes in (fp32 on the CPU, bf16 on a GPU), with this process's threads."""
    dev = device()
    dtype = torch.bfloat16 if on_gpu() else torch.float32
    best_rate, best_n, reps = 0.0, 0, 0
    for n in ((4096, 8192) if on_gpu() else (1024, 2048)):
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        torch.mm(a, b)
        sync()
        best = float("inf")
        deadline = time.perf_counter() + seconds
        count = 0
        while time.perf_counter() < deadline or count < 3:
            t0 = time.perf_counter()
            torch.mm(a, b)
            sync()
            best = min(best, time.perf_counter() - t0)
            count += 1
        reps += count
        rate = 2 * n**3 / best / 1e9
        if rate > best_rate:
            best_rate, best_n = rate, n
    return {"gflops": best_rate, "n": best_n, "dtype": str(dtype).replace("torch.", ""), "reps": reps}
