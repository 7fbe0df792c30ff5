"""The step FLOPs ``mpm plan`` reports (``planning.flops``): a hand count on a
tiny llama + CLIP stack, and what torch's FLOP counter records for the same
training step."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from mpm_framework.composition import compose
from mpm_framework.planning.estimate import flops_per_step

# Sizes the hand count below is written for.
LLM = dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2)
VISION = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4)


def _align_stack():
    overrides = [f"model.llm.tiny.{k}={v}" for k, v in LLM.items()]
    overrides += [f"model.vision.tiny.{k}={v}" for k, v in VISION.items()]
    overrides += ["model.vision.feature_layer=-1", "model.vision.keep_cls=false"]
    stack = compose(llm="llama", vision="clip", connector="mlp2x_gelu", overrides=overrides)
    stack.set_trainable(["vision", "connector"])  # the align stage: the LLM is frozen
    return stack


def test_align_step_flops_equal_a_hand_count(tiny_components):
    stack = _align_stack()
    vocab = stack.llm.vocab_size
    batch, seq = 2, 40
    # per image: 16 patches of 8x8x3 -> 32 (forward + weight gradient; the input is pixels),
    # 2 layers over 17 tokens (CLS kept inside the tower): q,k,v,o 32x32 and MLP 32x64 + 64x32,
    # forward + input + weight gradients; scores 17x17x32 twice forward, four times backward
    patch = 2 * (2 * 16 * 3 * 8 * 8 * 32)
    vision = 2 * (3 * 2 * 17 * (4 * 32 * 32 + 2 * 32 * 64) + 6 * 2 * 17 * 17 * 32)
    connector = 3 * 2 * 16 * (32 * 64 + 64 * 64)  # mlp2x_gelu on 16 output tokens
    # per sequence: 2 frozen layers, forward + input gradient: q,o 64x64, k,v 64x32 (2 kv heads
    # of 16), gate/up/down 64x128; scores 40x40x64; no weight gradients, no embedding matmul
    llm = 2 * (2 * 2 * seq * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128) + 6 * 2 * seq * seq * 64)
    # the LM head on the 10 label tokens of each sequence only (forward + input gradient)
    head = 2 * 2 * (batch * seq // 4) * 64 * vocab
    hand = batch * (patch + vision + connector + llm) + head
    assert flops_per_step(stack, batch, seq) == hand


@pytest.mark.parametrize("trainable", [["vision", "connector"], ["connector", "llm"]], ids=["align", "instruct"])
def test_step_flops_equal_torch_flop_counter(tiny_components, trainable):
    """The count equals what torch's counter sees on the step the planner
    describes (``synthetic_batch``: labels on the last quarter), with attention
    in the math kernel so the counter sees its matmuls."""
    stack = _align_stack()
    stack.set_trainable(trainable)
    batch, seq = 2, 24
    inputs = stack.llm.synthetic_batch(batch, seq, stack.num_image_tokens)
    inputs["pixel_values"] = torch.randn(batch, 3, 32, 32)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        stack(inputs).loss.backward()
    assert flops_per_step(stack, batch, seq) == counter.get_total_flops()
