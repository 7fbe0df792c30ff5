"""Stages: prompts, label masking, image slots, packing, calibration mixing, registry."""

from __future__ import annotations

import random

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from mpm_framework.contracts.prompt import IGNORE_INDEX
from mpm_framework.errors import ConfigError
from mpm_framework.testing import EOS, TinyLLM, TinyLLMConfig, tiny_chat_stack
from mpm_framework.training.packing import block_causal_mask, pack_in_order
from mpm_framework.training.recipes import stage_config
from mpm_framework.training.samples import BadSample, normalise
from mpm_framework.training.stages import (
    PretrainStage,
    Stage,
    default_freeze_sets,
    get_stage,
    register_stage,
)


def _cfg(**data):
    return stage_config(OmegaConf.create({"data": data}), "align")


def _answers(llm, batch):
    """The text under the labels of each row (what the loss trains)."""
    out = []
    for row in batch["labels"]:
        ids = [int(t) for t in row if t != IGNORE_INDEX]
        out.append(llm.decode_text(ids))
    return out


def _pair(text="a red square", lang="en"):
    return normalise({"image": Image.new("RGB", (40, 40), "red"), "text": text, "lang": lang},
                     kind="pairs", lang="en", where="t")


def test_align_labels_cover_the_caption_only():
    stack = tiny_chat_stack()
    stage, cfg = get_stage("align"), _cfg()
    ctx = stage.make_context(stack, cfg)
    items = [stage.prepare(_pair(t), random.Random(i), ctx) for i, t in enumerate(["a red square", "blue"])]
    batch = stage.collate(items, ctx)
    assert _answers(stack.llm, batch) == ["a red square", "blue"]
    labelled = batch["labels"] != IGNORE_INDEX
    assert int(batch["labels"][labelled][-1]) == EOS  # the end token is learnt too
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert int(batch["image_mask"].sum()) == 2 * stack.num_image_tokens
    prompt = stack.llm.decode_text(batch["input_ids"][0].tolist())
    assert any(p in prompt for p in stack.languages["en"].caption_prompts)
    assert stage.loss_units(batch) == len("a red square") + len("blue") + 2


def test_caption_prompt_is_seeded_per_sample():
    stack = tiny_chat_stack()
    stage = get_stage("align")
    ctx = stage.make_context(stack, _cfg())
    a = [stage.prepare(_pair(), random.Random(s), ctx).encoding.input_ids for s in range(6)]
    b = [stage.prepare(_pair(), random.Random(s), ctx).encoding.input_ids for s in range(6)]
    assert a == b and len({tuple(x) for x in a}) > 1


def test_instruct_multi_turn_masks_human_turns():
    stack = tiny_chat_stack()
    stage = get_stage("instruct")
    ctx = stage.make_context(stack, stage_config(OmegaConf.create({}), "instruct"))
    sample = normalise({"image": Image.new("RGB", (32, 32)), "conversations": [
        {"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A cat."},
        {"from": "human", "value": "Colour?"}, {"from": "gpt", "value": "White."}]},
        kind="instruct", lang="en", where="t")
    batch = stage.collate([stage.prepare(sample, random.Random(0), ctx)], ctx)
    assert _answers(stack.llm, batch) == ["A cat.White."]
    text = stack.llm.decode_text(batch["input_ids"][0].tolist())
    assert "What is it?" in text and "Colour?" in text


def test_text_only_instruction_has_no_pixels():
    stack = tiny_chat_stack()
    stage = get_stage("instruct")
    ctx = stage.make_context(stack, stage_config(OmegaConf.create({}), "instruct"))
    sample = normalise({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
                       kind="instruct", lang="en", where="t")
    batch = stage.collate([stage.prepare(sample, random.Random(0), ctx)], ctx)
    assert "pixel_values" not in batch and not batch["image_mask"].any()
    assert torch.isfinite(stack(batch).loss)


def test_unknown_language_and_too_long_are_skipped():
    stack = tiny_chat_stack()
    stage = get_stage("align")
    ctx = stage.make_context(stack, _cfg(max_length=30))
    with pytest.raises(BadSample, match="unknown_language"):
        stage.prepare(_pair(lang="xx"), random.Random(0), ctx)
    with pytest.raises(BadSample, match=r"too_long.*answer"):
        stage.prepare(_pair("x" * 5), random.Random(0), ctx)
    ctx.max_length = 10
    with pytest.raises(BadSample, match=r"too_long.*image slots"):
        stage.prepare(_pair("x"), random.Random(0), ctx)


def test_long_text_is_truncated_in_pretraining():
    stack = tiny_chat_stack()
    stage = get_stage("pretrain")
    ctx = stage.make_context(stack, stage_config(OmegaConf.create({"data": {"max_length": 16}}), "pretrain"))
    sample = normalise({"text": "y" * 100}, kind="text", lang="en", where="t")
    assert len(stage.prepare(sample, random.Random(0), ctx).encoding) == 16


# -- packing ---------------------------------------------------------------------------


class PackingTinyLLM(TinyLLM):
    """TinyLLM with packing through the framework helpers: positions restart and
    attention stays inside each sample (what an LLM plugin's pack_sequences does)."""

    supports_packing = True

    def pack_sequences(self, encodings, max_length):
        return pack_in_order(encodings, max_length)

    def collate(self, encodings, padding_side="right"):
        batch = super().collate(encodings, padding_side)
        width = batch["input_ids"].shape[1]
        pos, sid = [], []
        for e in encodings:
            pad = [0] * (width - len(e))
            pos.append(e.extra.get("position_ids", list(range(len(e)))) + pad)
            sid.append(e.extra.get("sequence_ids", [1] * len(e)) + pad)
        batch["position_ids"], batch["sequence_ids"] = torch.tensor(pos), torch.tensor(sid)
        return batch

    def forward(self, inputs_embeds, batch, labels=None, output_hidden_states=False):
        from torch.nn import functional as F

        from mpm_framework.contracts.llm import LMOutput

        x = inputs_embeds + self.pos(batch["position_ids"])
        allowed = block_causal_mask(batch["sequence_ids"])
        mask = (~allowed).repeat_interleave(self.layers[0].self_attn.num_heads, 0)
        for layer in self.layers:
            x = layer(x, src_mask=mask)
        logits = self.head(self.norm(x))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX)
        return LMOutput(loss, logits, None, int((labels[:, 1:] != IGNORE_INDEX).sum()) if labels is not None else 0)


def packing_stack():
    stack = tiny_chat_stack()
    packed = PackingTinyLLM(TinyLLMConfig())
    packed.load_state_dict(stack.llm.state_dict())
    stack.llm = packed
    return stack


def test_pack_in_order_keeps_order_and_boundaries():
    llm = TinyLLM(TinyLLMConfig())
    encs = [llm.encode_text(t) for t in ("ab", "cde", "f", "ghij")]  # lengths 4, 5, 3, 6
    rows = pack_in_order(encs, max_length=10)
    assert [len(r) for r in rows] == [9, 9]
    assert rows[0].input_ids == encs[0].input_ids + encs[1].input_ids
    assert rows[0].extra["sequence_ids"] == [1] * 4 + [2] * 5
    assert rows[0].extra["position_ids"] == [0, 1, 2, 3, 0, 1, 2, 3, 4]
    assert rows[0].labels[4] == IGNORE_INDEX  # no prediction across the boundary
    mask = block_causal_mask(torch.tensor([rows[0].extra["sequence_ids"]]))[0]
    assert mask[5, 3].item() is False and mask[5, 4].item() is True and mask[3, 0].item() is True


def test_packed_loss_equals_per_sample_unpacked_loss():
    stack = packing_stack()
    stage = get_stage("instruct")
    cfg = stage_config(OmegaConf.create({"data": {"packing": True, "max_length": 512}}), "instruct")
    ctx_packed = stage.make_context(stack, cfg)
    cfg_plain = stage_config(OmegaConf.create({"data": {"packing": False}}), "instruct")
    ctx_plain = stage.make_context(stack, cfg_plain)
    samples = [_pair(t) for t in ("a red square", "two blue circles on the left", "x")]
    samples.append(normalise({"conversations": [{"from": "human", "value": "Hi"},
                                                {"from": "gpt", "value": "Hello there"}]},
                             kind="instruct", lang="en", where="t"))
    items = [stage.prepare(s, random.Random(i), ctx_plain) for i, s in enumerate(samples)]
    with torch.no_grad():
        packed_batch = stage.collate(items, ctx_packed)
        assert packed_batch["input_ids"].shape[0] == 1  # all four share one row
        packed = stack(packed_batch).loss
        singles = []
        for item in items:
            b = stage.collate([item], ctx_plain)
            singles.append((stack(b).loss, stage.loss_units(b)))
        per_sample = sum(loss * n for loss, n in singles) / sum(n for _, n in singles)
        padded = stack(stage.collate(items, ctx_plain)).loss
    assert stage.loss_units(packed_batch) == sum(n for _, n in singles)
    torch.testing.assert_close(packed, per_sample, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(padded, per_sample, rtol=1e-5, atol=1e-6)


def test_packing_needs_an_llm_that_supports_it():
    with pytest.raises(ConfigError, match="supports_packing"):
        get_stage("align").make_context(tiny_chat_stack(), _cfg(packing=True))


# -- trainable sets, calibration, registry --------------------------------------------------


def test_default_freeze_sets():
    stack = tiny_chat_stack()
    assert default_freeze_sets("align", stack) == (["connector"], [])
    assert default_freeze_sets("instruct", stack) == (["connector", "llm"], ["vision.patch_embed"])
    assert default_freeze_sets("pretrain", stack)[0] == ["llm"]
    stack.vision.owns_bridge = True
    stack.vision.trainable_groups = lambda: {"patch_embed": ["patch."], "mapping": ["block."]}
    assert default_freeze_sets("align", stack)[0] == ["connector", "vision.mapping"]


def test_calibration_share_mixes_pack_pairs():
    stack = tiny_chat_stack()
    stage = get_stage("instruct")
    cfg = stage_config(OmegaConf.create({"data": {"calibration_share": 0.25, "calibration_langs": ["en"]}}),
                       "instruct")
    (source, share), = stage.extra_sources(stack, cfg)
    assert share == 0.25 and len(source) == len(stack.languages["en"].calibration())
    sample = source.sample(*source.get(0))
    assert sample.kind == "instruct" and not sample.has_image and sample.lang == "en"
    with pytest.raises(ConfigError, match="no target language"):
        stage.extra_sources(stack, stage_config(OmegaConf.create({"data": {"calibration_share": 0.1}}), "instruct"))


def test_stage_registry_and_suggestions():
    with pytest.raises(ConfigError, match="Did you mean 'align'"):
        get_stage("allign")

    class Echo(Stage):
        name = "echo-test"
        sample_kinds = ("text",)

    try:
        register_stage(Echo)
        assert get_stage("echo-test").name == "echo-test"
        with pytest.raises(ConfigError, match="already registered"):
            register_stage(Echo)
    finally:
        from mpm_framework.training import stages

        stages._STAGES.pop("echo-test", None)
    assert isinstance(get_stage("mpm_framework.training.stages:PretrainStage"), PretrainStage)
