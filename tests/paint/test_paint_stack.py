"""PaintStack: the frozen pivot, trainable sets, caption dropout, the training objective."""

import pytest
import torch

from mpm_framework.errors import ConfigError


def test_the_pivot_is_frozen_and_stays_in_eval_mode(tiny_paint_stack):
    stack = tiny_paint_stack
    counts = stack.set_trainable(stack.default_trainable())
    assert counts["llm"][0] == 0 and counts["decoder"][0] > 0
    stack.train()
    assert stack.decoder.training and not stack.llm.training
    with pytest.raises(ConfigError, match="keeps the pivot LLM frozen"):
        stack.set_trainable(["decoder.adapter", "llm.layers"])


@pytest.mark.parametrize(
    "choice,groups",
    [("adapter", {"adapter"}), ("adapter+cross_attention", {"adapter", "cross_attention"}),
     ("all", {"adapter", "cross_attention", "unet"})],
)
def test_the_configured_trainable_set(make_paint_stack, choice, groups):
    stack = make_paint_stack(f"model.decoder.trainable={choice}")
    stack.set_trainable(stack.default_trainable())
    decoder_groups = stack.decoder.trainable_groups()
    trainable = {n for n, p in stack.decoder.named_parameters() if p.requires_grad}
    for group in ("adapter", "cross_attention"):
        members = {n for n, _ in stack.decoder.named_parameters()
                   if any(n.startswith(p) for p in decoder_groups[group])}
        assert (members <= trainable) == (group in groups)
    others = {n for n in (n for n, _ in stack.decoder.named_parameters())
              if n.startswith("unet.") and ".attn2." not in n}
    assert (others <= trainable) == ("unet" in groups)
    assert not (others & trainable) or "unet" in groups


def test_prompts_are_encoded_from_the_last_llm_layer(tiny_paint_stack):
    stack = tiny_paint_stack
    hidden, mask = stack.encode_prompts(["a red circle", "一个红色的圆形在左边"])
    assert hidden.shape[:2] == mask.shape and hidden.shape[-1] == stack.llm.hidden_size
    assert mask[0].sum() < mask[1].sum()  # utf-8 bytes: the Chinese prompt is longer
    enc = stack.llm.collate([stack.llm.encode_text("a red circle")])
    out = stack.llm(stack.llm.embed_tokens(enc["input_ids"]), enc, output_hidden_states=True)
    n = int(mask[0].sum())
    torch.testing.assert_close(hidden[0, :n], out.hidden_states[-1][0])
    assert not hidden.requires_grad


def test_caption_dropout_only_in_training(tiny_paint_stack):
    stack = tiny_paint_stack
    stack.caption_dropout = 0.5
    prompts = [f"prompt {i}" for i in range(200)]
    stack.eval()
    assert stack.drop_captions(prompts) == prompts
    stack.train()
    torch.manual_seed(0)
    dropped = stack.drop_captions(prompts)
    empties = sum(p == "" for p in dropped)
    assert 60 < empties < 140
    assert all(d in ("", p) for d, p in zip(dropped, prompts, strict=True))


def test_caption_dropout_comes_from_the_decoder_config(make_paint_stack):
    stack = make_paint_stack("model.decoder.caption_dropout=0.3")
    assert stack.caption_dropout == pytest.approx(0.3)


def test_training_steps_lower_the_loss_on_a_fixed_batch(tiny_paint_stack):
    """The paint objective end to end: prompts through the frozen pivot, the
    adapter and cross-attention trained (the VisCPM default)."""
    stack = tiny_paint_stack
    stack.caption_dropout = 0.0
    stack.set_trainable(["decoder.adapter", "decoder.cross_attention", "decoder.unet"])
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 16, 16, generator=g).round() * 2 - 1
    prompts = ["a red circle on the left", "a blue square", "ein grünes Dreieck", "一个黄色的圆形"]
    noise = torch.randn(4, 3, 16, 16, generator=g)
    t = torch.tensor([100, 300, 600, 850])

    def fixed() -> float:
        stack.eval()
        cond, mask = stack.encode_prompts(prompts)
        with torch.no_grad():
            return float(stack.decoder.training_loss(images, cond, mask, noise=noise, timesteps=t))

    llm_before = {k: v.clone() for k, v in stack.llm.state_dict().items()}
    before = fixed()
    opt = torch.optim.AdamW([p for p in stack.parameters() if p.requires_grad], lr=2e-3)
    stack.train()
    losses = []
    for _ in range(6):
        loss = stack({"images": images, "prompts": prompts})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert fixed() < 0.9 * before
    for key, value in stack.llm.state_dict().items():
        assert torch.equal(value, llm_before[key]), key


def test_a_batch_with_mismatched_prompts_is_an_error(tiny_paint_stack):
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        tiny_paint_stack({"images": torch.zeros(2, 3, 16, 16), "prompts": ["x"]})


def test_image_transform_keeps_left_and_right(tiny_paint_stack):
    from PIL import Image

    image = Image.new("RGB", (32, 32), (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, 8, 32))  # red strip on the left
    tensor = tiny_paint_stack.image_transform(train=True)(image)
    assert tensor.shape == (3, 16, 16)
    assert tensor[0, :, 0].mean() > 0.9 and tensor[1, :, 0].mean() < -0.9  # still red on the left
    assert tensor.min() >= -1 and tensor.max() <= 1
