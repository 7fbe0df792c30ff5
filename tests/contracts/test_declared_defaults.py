"""Optional contract members: the defaults the core relies on when a plugin sets none."""

from __future__ import annotations

import pytest
import torch

from mpm_framework.contracts.decoder import ImageDecoder
from mpm_framework.contracts.llm import PivotLLM
from mpm_framework.contracts.prompt import IGNORE_INDEX, next_token_targets, predicting_positions
from mpm_framework.contracts.vision import BRIDGE_GROUP_NAMES, PATCH_EMBED_GROUP
from mpm_framework.testing import TinyLLM, TinyLLMConfig, TinyVision, TinyVisionConfig, tiny_chat_stack
from mpm_framework.training.stages import bridge_groups, default_freeze_sets


def test_vision_defaults():
    vision = TinyVision(TinyVisionConfig())
    assert vision.num_input_tokens == vision.num_output_tokens
    vision.num_input_tokens = 3 * vision.num_output_tokens  # a resampling encoder may just assign it
    assert vision.num_input_tokens == 3 * vision.num_output_tokens
    assert vision.bridge_groups() == [] and not vision.owns_bridge
    assert PATCH_EMBED_GROUP in vision.trainable_groups()


def test_bridge_groups_default_picks_the_named_groups_of_an_owning_encoder():
    stack = tiny_chat_stack()
    assert bridge_groups(stack) == []  # owns_bridge False: nothing, whatever the groups
    stack.vision.owns_bridge = True
    stack.vision.trainable_groups = lambda: {"patch_embed": ["patch."], "queries": ["q"], "mapping": ["m."]}
    assert bridge_groups(stack) == ["vision.queries", "vision.mapping"]
    assert set(BRIDGE_GROUP_NAMES) >= {"queries", "mapping"}
    stack.vision.bridge_groups = lambda: ["mapping"]  # an encoder's own choice wins
    assert default_freeze_sets("align", stack)[0] == ["connector", "vision.mapping"]
    assert default_freeze_sets("instruct", stack)[1] == [f"vision.{PATCH_EMBED_GROUP}"]


def test_llm_defaults():
    llm = TinyLLM(TinyLLMConfig())
    assert tuple(llm.stop_token_ids) == () and dict(llm.generation_defaults) == {}
    assert llm.max_context_length is None and llm.supports_packing is False
    with pytest.raises(TypeError):
        PivotLLM.generation_defaults["num_beams"] = 3  # shared default: read-only
    plain, paint = llm.encode_text("a red circle"), llm.encode_paint_prompt("a red circle")
    assert (paint.input_ids, paint.labels) == (plain.input_ids, plain.labels)
    encodings = [llm.encode_text("ab"), llm.encode_text("cde")]
    assert llm.pack_sequences(encodings, 64) is encodings  # no packing support: unchanged


def test_decoder_default_trainable_is_the_whole_decoder():
    class Decoder(ImageDecoder):
        image_size = 8

        def training_loss(self, images, cond, cond_mask):
            return images.mean()

        def sample(self, cond, cond_mask, uncond, uncond_mask, guidance_scale=7.5, num_steps=50, generator=None):
            return torch.zeros(cond.shape[0], 3, 8, 8)

    assert Decoder().default_trainable() == ["decoder"]


def test_label_shift_is_one_rule_for_lists_and_batches():
    labels = [IGNORE_INDEX, 5, 6, 7]
    assert next_token_targets(labels) == [5, 6, 7]
    batch = torch.tensor([labels, [IGNORE_INDEX, IGNORE_INDEX, 8, 9]])
    logits = torch.randn(2, 4, 11)
    assert next_token_targets(batch).tolist() == [[5, 6, 7], [IGNORE_INDEX, 8, 9]]
    assert torch.equal(predicting_positions(logits), logits[:, :3])

