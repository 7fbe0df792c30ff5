"""BEiT-3 with its bridge composes into a ChatStack with the identity connector,
trains a step under VisCPM's freeze policy and generates."""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from mpm_framework import compose
from mpm_framework.contracts.prompt import Turn

TINY = ["model.vision.preset=tiny", "model.vision.num_queries=4"]


def _images(n):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)) for _ in range(n)]


def _batch(stack, n=2, train=True):
    turns = [Turn("user", "<image>\nWhat is this?"), Turn("assistant", "a red circle")]
    batch = stack.llm.collate([stack.encode_conversation(turns) for _ in range(n)])
    transform = stack.image_transform(train=train)
    batch["pixel_values"] = torch.stack([transform(img) for img in _images(n)])
    return batch


def _train_step(stack):
    trainable, frozen = stack.vision.freeze_sets()
    stack.set_trainable([f"vision.{g}" for g in trainable], [f"vision.{g}" for g in frozen])
    params = [p for p in stack.parameters() if p.requires_grad]
    before = {n: p.detach().clone() for n, p in stack.vision.named_parameters()}
    opt = torch.optim.AdamW(params, lr=1e-2)
    loss = stack(_batch(stack)).loss
    loss.backward()
    opt.step()
    after = dict(stack.vision.named_parameters())
    return loss, before, after


def test_beit3_chat_stack_trains_a_step(beit3_registered):
    stack = compose(llm="tiny-llm", vision="beit3", connector="identity", overrides=TINY)
    assert stack.num_image_tokens == 4 and stack.vision.output_dim == stack.llm.hidden_size
    loss, before, after = _train_step(stack)
    assert torch.isfinite(loss)
    assert not torch.equal(before["query"], after["query"])  # the bridge learns
    assert not torch.equal(before["mapping.0.weight"], after["mapping.0.weight"])
    assert torch.equal(before["beit3.vision_embed.proj.weight"], after["beit3.vision_embed.proj.weight"])
    assert all(p.grad is None for p in stack.llm.parameters())  # LLM frozen by the stage


def test_beit3_stack_generates(beit3_registered):
    if importlib.util.find_spec("mpm_framework.inference") is None:
        pytest.skip("mpm_framework.inference (the decoding loop) is not available")
    stack = compose(llm="tiny-llm", vision="beit3", connector="identity", overrides=TINY)
    answers = stack.generate(_images(2), ["What is this?", "Colour?"], max_new_tokens=5)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_beit3_composes_with_llama(beit3_registered, mpm_plugin):
    if importlib.util.find_spec("mpm_llm_llama") is None:
        pytest.skip("mpm_llm_llama (the LLaMA plugin) is not installed")
    import mpm_llm_llama.plugin as llama_plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(llama_plugin):
        mpm_plugin(llama_plugin, name="mpm_llm_llama")
    stack = compose(llm="llama", vision="beit3", connector="identity", overrides=TINY)
    assert stack.vision.output_dim == stack.llm.hidden_size
    loss, before, after = _train_step(stack)
    assert torch.isfinite(loss) and not torch.equal(before["query"], after["query"])
    if importlib.util.find_spec("mpm_framework.inference") is not None:
        answers = stack.generate(_images(1), ["What is this?"], max_new_tokens=4)
        assert len(answers) == 1 and isinstance(answers[0], str)


def test_viscpm_recipe_resolves(beit3_registered):
    from pathlib import Path

    import mpm_vision_beit3

    recipe = Path(mpm_vision_beit3.__file__).parent / "viscpm.yaml"
    stack = compose(llm="tiny-llm", config=recipe, overrides=TINY)
    assert stack.config.model.vision.name == "beit3" and stack.config.model.connector.name == "identity"
    assert stack.num_image_tokens == 4 and type(stack.connector).__name__ == "IdentityConnector"


def test_config_typos_are_caught(beit3_registered):
    from mpm_framework.errors import ConfigError

    with pytest.raises(ConfigError, match=r"Did you mean 'model\.vision\.num_queries'"):
        compose(llm="tiny-llm", vision="beit3", overrides=["model.vision.num_querys=4"])


def test_registered_torch_free():
    """The registration module and config import no torch (``mpm plugins list``)."""
    import subprocess
    import sys

    code = (
        "import sys, mpm_vision_beit3.plugin, mpm_vision_beit3.config\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_stages_train_the_bridge(beit3_registered):
    """The core stages ask the encoder for its bridge groups (align: LLM frozen)."""
    stages = pytest.importorskip("mpm_framework.training.stages")
    stack = compose(llm="tiny-llm", vision="beit3", connector="identity", overrides=TINY)
    groups = stages.bridge_groups(stack)
    assert {"vision.queries", "vision.mapping", "vision.language_expert"} <= set(groups)
    assert "vision.vision_expert" not in groups and "vision.patch_embed" not in groups
    counts = stack.set_trainable(["connector", *groups])
    assert 0 < counts["vision"][0] < counts["vision"][1] and counts["llm"][0] == 0
