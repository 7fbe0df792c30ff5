"""The stack base: what a stage may ask of any stack, and how stages tell kinds apart."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from mpm_framework.errors import ConfigError
from mpm_framework.stacks.base import Stack
from mpm_framework.stacks.chat import ChatStack
from mpm_framework.stacks.text import TextStack
from mpm_framework.testing import TinyLLM, TinyLLMConfig, tiny_chat_stack
from mpm_framework.training.recipes import stage_config
from mpm_framework.training.stages import get_stage


def test_chat_and_text_stacks_declare_their_kind_and_components():
    chat = tiny_chat_stack()
    text = TextStack(TinyLLM(TinyLLMConfig()))
    assert isinstance(chat, Stack) and isinstance(text, Stack)
    assert (chat.kind, text.kind) == ("chat", "text")
    assert set(chat.components()) == {"vision", "connector", "llm"} and set(text.components()) == {"llm"}
    assert text.image_transform(train=True) is None  # no images: stages build no transform
    assert callable(chat.image_transform(train=True))


def test_set_trainable_counts_per_component():
    stack = tiny_chat_stack()
    counts = stack.set_trainable(["connector"], [])
    connector = sum(p.numel() for p in stack.connector.parameters())
    assert counts["connector"] == (connector, connector)
    assert counts["llm"][0] == 0 and counts["vision"][0] == 0
    assert all(p.requires_grad for p in stack.connector.parameters())


def test_gradient_checkpointing_reaches_every_component():
    stack = tiny_chat_stack()
    seen = []
    for name, module in stack.components().items():
        module.enable_gradient_checkpointing = lambda name=name: seen.append(name)
    stack.enable_gradient_checkpointing()
    assert sorted(seen) == ["connector", "llm", "vision"]


def test_stages_check_the_stack_kind():
    cfg = stage_config(OmegaConf.create({}), "align")
    text = TextStack(TinyLLM(TinyLLMConfig()))
    get_stage("pretrain").check_stack(text)
    get_stage("align").check_stack(tiny_chat_stack())
    with pytest.raises(ConfigError, match="trains a paint stack"):
        get_stage("paint").check_stack(tiny_chat_stack())

    class NotAStack(torch.nn.Module):
        llm = None  # having an ``llm`` attribute no longer makes a chat stack

    with pytest.raises(ConfigError, match="trains a chat stack"):
        get_stage("align").check_stack(NotAStack())
    # a text stack has no image transform, so the context carries none
    assert get_stage("pretrain").make_context(text, stage_config(OmegaConf.create({}), "pretrain")).transform is None
    assert cfg.run.stage == "align"


def test_text_stack_is_still_importable_from_training():
    from mpm_framework.training import TextStack as exported

    assert exported is TextStack and issubclass(ChatStack, Stack)
