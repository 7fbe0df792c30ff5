"""CLIP / SigLIP towers compose into ChatStacks that train a step and generate."""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from mpm_framework import compose
from mpm_framework.contracts.prompt import Turn


def _images(n):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)) for _ in range(n)]


def _train_step(stack, trainable=("connector",)):
    stack.set_trainable(list(trainable))
    turns = [Turn("user", "<image>\nWhat is this?"), Turn("assistant", "a blue square")]
    batch = stack.llm.collate([stack.encode_conversation(turns) for _ in range(2)])
    transform = stack.image_transform(train=True)
    batch["pixel_values"] = torch.stack([transform(img) for img in _images(2)])
    before = {n: p.detach().clone() for n, p in stack.named_parameters()}
    opt = torch.optim.AdamW([p for p in stack.parameters() if p.requires_grad], lr=1e-2)
    loss = stack(batch).loss
    loss.backward()
    opt.step()
    changed = {n for n, p in stack.named_parameters() if not torch.equal(before[n], p)}
    return loss, changed


@pytest.mark.parametrize("vision", ["clip", "siglip"])
def test_tower_chat_stack_trains_a_step(clip_registered, vision):
    stack = compose(llm="tiny-llm", vision=vision, connector="mlp2x_gelu")
    assert stack.num_image_tokens == 16
    loss, changed = _train_step(stack, ("connector", "vision.last_layer"))
    assert torch.isfinite(loss)
    assert any(n.startswith("connector.") for n in changed)
    assert any(".encoder.layers.1." in n for n in changed)  # the last kept layer of 2 (feature_layer -2)
    assert not any(n.startswith("llm.") or "patch_embedding" in n for n in changed)


def test_clip_with_cls_from_a_checkpoint_generates(clip_registered, clip_dirs):
    if importlib.util.find_spec("mpm_framework.inference") is None:
        pytest.skip("mpm_framework.inference (the decoding loop) is not available")
    stack = compose(llm="tiny-llm", vision="clip", connector="linear",
                    overrides=[f"model.vision.path={clip_dirs['full']}", "model.vision.keep_cls=true"])
    assert stack.num_image_tokens == 17
    answers = stack.generate(_images(2), ["What is this?", "Colour?"], max_new_tokens=5)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_clip_composes_with_llama(clip_registered, mpm_plugin):
    if importlib.util.find_spec("mpm_llm_llama") is None:
        pytest.skip("mpm_llm_llama (the LLaMA plugin) is not installed")
    import mpm_llm_llama.plugin as llama_plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(llama_plugin):
        mpm_plugin(llama_plugin, name="mpm_llm_llama")
    stack = compose(llm="llama", vision="clip", connector="mlp2x_gelu")
    loss, changed = _train_step(stack)
    assert torch.isfinite(loss) and any(n.startswith("connector.") for n in changed)
    if importlib.util.find_spec("mpm_framework.inference") is not None:
        answers = stack.generate(_images(1), ["What is this?"], max_new_tokens=4)
        assert len(answers) == 1 and isinstance(answers[0], str)


def test_llava_recipe_resolves(clip_registered, clip_dirs):
    from pathlib import Path

    import mpm_vision_clip

    recipe = Path(mpm_vision_clip.__file__).parent / "llava.yaml"
    stack = compose(llm="tiny-llm", config=recipe, overrides=[f"model.vision.path={clip_dirs['vision']}"])
    assert stack.vision.pad_to_square and stack.vision.feature_layer == -2 and stack.num_image_tokens == 16


def test_registration_is_torch_free():
    import subprocess
    import sys

    code = "import sys, mpm_vision_clip.plugin, mpm_vision_clip.config\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
