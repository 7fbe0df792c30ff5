"""A tiny transformers Llava saved with ``save_pretrained`` (tokenizer with the
``<image>`` token, CLIP image processor config), for the import/export tests."""

from __future__ import annotations

from pathlib import Path

import torch

IMAGE = 32


def tiny_llava(seed: int = 0, vision: str = "clip", strategy: str = "default", feature_layer: int = -2):
    from mpm_llm_llama.toy import byte_tokenizer
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        SiglipVisionConfig,
    )

    tokenizer = byte_tokenizer()
    tokenizer.chat_template = None  # as llava-1.5's tokenizer: the template lives in the processor
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    sizes = dict(image_size=IMAGE, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                 num_attention_heads=4)
    vc = CLIPVisionConfig(**sizes) if vision == "clip" else SiglipVisionConfig(**sizes)
    tc = LlamaConfig(vocab_size=len(tokenizer) + 4, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vc, text_config=tc, image_token_index=image_id,
                         vision_feature_layer=feature_layer, vision_feature_select_strategy=strategy,
                         image_seq_length=(IMAGE // 8) ** 2)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # move LayerNorms and biases off their init so a skipped one shows
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model, tokenizer


def save_tiny_llava(path: Path, **kw) -> tuple[Path, object]:
    from transformers import CLIPImageProcessor, SiglipImageProcessor

    model, tokenizer = tiny_llava(**kw)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    if model.config.vision_config.model_type == "clip_vision_model":
        processor = CLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE})
    else:
        processor = SiglipImageProcessor(size={"height": IMAGE, "width": IMAGE})
    processor.save_pretrained(str(path))
    return path, model
