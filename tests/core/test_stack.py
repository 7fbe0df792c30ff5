import pytest
import torch

from mpm_framework import compose
from mpm_framework.contracts.prompt import Turn
from mpm_framework.errors import ConfigError, MPMError
from mpm_framework.stacks.chat import scatter_image_features
from mpm_framework.testing import tiny_chat_stack


def _batch(stack, n_images=2):
    turns = [Turn("user", "<image>\nDescribe."), Turn("assistant", "a red circle")]
    batch = stack.llm.collate([stack.encode_conversation(turns) for _ in range(n_images)])
    batch["pixel_values"] = torch.randn(n_images, 3, 32, 32)
    return batch


def test_compose_builds_a_chat_stack_that_trains(tiny_components):
    stack = compose(llm="tiny-llm", vision="tiny-vision", connector="mlp2x_gelu")
    counts = stack.set_trainable(["connector"])
    assert counts["connector"][0] == counts["connector"][1] > 0
    assert counts["llm"][0] == 0 and counts["vision"][0] == 0
    out = stack(_batch(stack))
    out.loss.backward()
    assert all(p.grad is not None for p in stack.connector.parameters())
    assert all(p.grad is None for p in stack.llm.parameters())


def test_image_features_land_in_the_slots():
    embeds = torch.zeros(2, 5, 3)
    mask = torch.tensor([[0, 1, 1, 0, 0], [0, 0, 1, 1, 0]], dtype=torch.bool)
    feats = torch.arange(12, dtype=torch.float).view(2, 2, 3)
    out = scatter_image_features(embeds, mask, feats)
    assert torch.equal(out[0, 1:3], feats[0]) and torch.equal(out[1, 2:4], feats[1])
    assert out[~mask].abs().sum() == 0


def test_slot_count_mismatch_is_a_clear_error():
    stack = tiny_chat_stack()
    batch = _batch(stack, 2)
    batch["pixel_values"] = batch["pixel_values"][:1]
    with pytest.raises(MPMError, match="image slot mismatch"):
        stack(batch)


def test_features_reach_the_loss():
    """Changing the image changes the loss: the scatter is wired into the LLM."""
    stack = tiny_chat_stack()
    batch = _batch(stack)
    first = stack(batch).loss
    batch["pixel_values"] = batch["pixel_values"] + 1
    assert not torch.allclose(first, stack(batch).loss)


@pytest.mark.parametrize("connector", ["linear", "mlp2x_gelu", "resampler"])
def test_builtin_connectors_shapes(tiny_components, connector):
    stack = compose(llm="tiny-llm", vision="tiny-vision", connector=connector)
    feats = stack.encode_images(torch.randn(3, 3, 32, 32))
    assert feats.shape == (3, stack.num_image_tokens, stack.llm.hidden_size)
    assert stack(_batch(stack, 1)).loss.isfinite()


def test_identity_connector_needs_matching_width(tiny_components):
    with pytest.raises(ConfigError, match="identity"):
        compose(llm="tiny-llm", vision="tiny-vision", connector="identity")


def test_unknown_trainable_group_suggests(tiny_components):
    stack = compose(llm="tiny-llm", vision="tiny-vision")
    with pytest.raises(ConfigError, match="Did you mean 'patch_embed'"):
        stack.set_trainable(["vision.patch_embd"])
    counts = stack.set_trainable(["vision", "connector"], frozen=["vision.patch_embed"])
    assert not any(p.requires_grad for p in stack.vision.patch.parameters())
    assert counts["vision"][0] == counts["vision"][1] - sum(p.numel() for p in stack.vision.patch.parameters())


def test_meta_build_allocates_nothing(tiny_components):
    stack = compose(llm="tiny-llm", vision="tiny-vision", meta=True)
    assert all(p.is_meta for p in stack.parameters())
    real = compose(llm="tiny-llm", vision="tiny-vision")
    assert sum(p.numel() for p in stack.parameters()) == sum(p.numel() for p in real.parameters())


def test_top_level_compose_survives_submodule_imports():
    """`mpm_framework.compose` must stay the function whatever was imported before."""
    import importlib

    import mpm_framework

    for name in ("composition", "stacks.chat", "config.loading", "planning.estimate"):
        importlib.import_module(f"mpm_framework.{name}")
    assert callable(mpm_framework.compose)
