"""``mpm export RUN --format llava-hf``: a chat run as a transformers Llava folder.

Mapping (the reverse of :mod:`mpm_interop.llava_hf`):

- ``llm.hf.model.*`` -> ``model.language_model.*``, ``llm.hf.lm_head`` -> ``lm_head``
- ``vision.model.*`` -> ``model.vision_tower.*``. MPM towers drop the layers
  past the feature layer, so the exported tower has exactly the kept layers and
  ``vision_feature_layer`` is ``-1`` (the same hidden state); the unused final
  LayerNorm is written as identity, SigLIP's pooling head left out
  (``vision_use_head: false``).
- ``connector.proj.0`` / ``proj.2`` -> ``multi_modal_projector.linear_1`` / ``linear_2``
- ``keep_cls`` (CLIP) or SigLIP -> ``vision_feature_select_strategy: full``, else ``default``
- the image token, the tokenizer with the stack's chat template, and a
  processor (image processor from the tower's preprocessing, a chat template
  that turns ``{"type": "image"}`` parts into the image token and then renders
  the stack's prompt format)

Stacks Llava cannot express are refused with the reason. LoRA runs
(``run.lora``, MPM's one LoRA) export merged, or with ``adapter=True`` as the
unmerged base plus a PEFT adapter in ``adapter/``
(``PeftModel.from_pretrained(model, DIR / "adapter")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mpm_framework.errors import ConfigError, MPMError
from mpm_framework.training.lora import lora_parameter_names, merge_lora, unload_lora

# Turns processor-style contents (lists of {"type": "image"} / {"type": "text"})
# into the strings the stack's template renders; an image part becomes the
# image token and a newline, as MPM prompts put "<image>\n" before the text.
PROCESSOR_PRELUDE = (
    "{%- set ns = namespace(msgs=[]) -%}"
    "{%- for m in messages -%}"
    "{%- if m['content'] is string -%}{%- set ns.msgs = ns.msgs + [m] -%}"
    "{%- else -%}{%- set t = namespace(v='') -%}"
    "{%- for c in m['content'] -%}"
    "{%- if c['type'] == 'image' -%}{%- set t.v = t.v + '@IMAGE@\n' -%}"
    "{%- elif c['type'] == 'text' -%}{%- set t.v = t.v + c['text'] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- set ns.msgs = ns.msgs + [{'role': m['role'], 'content': t.v}] -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- set messages = ns.msgs -%}"
)


def refusal_reasons(stack: Any) -> list[str]:
    """Why Llava cannot hold this stack (empty: it can)."""
    from mpm_llm_llama.model import HFCausalLM
    from mpm_vision_clip.encoder import HFVisionTower

    from mpm_framework.connectors.modules import MLPConnector
    from mpm_framework.stacks.chat import ChatStack

    if not isinstance(stack, ChatStack):
        return ["a paint stack (text -> image) has no Llava counterpart; Llava is image -> text"]
    reasons = []
    names = stack.config.model if stack.config is not None else None
    if not isinstance(stack.llm, HFCausalLM):
        name = names.llm.name if names is not None else type(stack.llm).__name__
        reasons.append(f"the LLM '{name}' is not a transformers causal LM (Llava's language_model is one; "
                       "CPM-Bee's segment-tree attention and structured prompts have no Llava form)")
    if not isinstance(stack.vision, HFVisionTower):
        name = names.vision.name if names is not None else type(stack.vision).__name__
        reasons.append(f"the vision encoder '{name}' is not a CLIP/SigLIP tower (BEiT-3 with learned queries "
                       "and its multiway experts has no Llava vision_tower)")
    proj = getattr(stack.connector, "proj", None)
    two_layer_gelu = (isinstance(stack.connector, MLPConnector) and len(proj) == 3
                      and isinstance(proj[1], nn.GELU) and proj[1].approximate == "none")
    if not two_layer_gelu:
        name = names.connector.name if names is not None else type(stack.connector).__name__
        reasons.append(f"the connector '{name}' is not mlp2x_gelu (Llava's projector is Linear-GELU-Linear; "
                       "a single linear layer, a resampler or an identity bridge cannot be written as it)")
    return reasons


def lora_state(stack: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(adapter tensors under MPM names, the LoRA hyper-parameters)."""
    from peft.tuners.lora import LoraLayer

    tensors: dict[str, torch.Tensor] = {}
    hyper: dict[str, Any] = {}
    for name, module in stack.named_modules():
        if isinstance(module, LoraLayer):
            adapter = module.active_adapters[0]
            tensors[name + ".lora_A.weight"] = module.lora_A[adapter].weight.detach()
            tensors[name + ".lora_B.weight"] = module.lora_B[adapter].weight.detach()
            hyper = {"r": module.r[adapter], "lora_alpha": module.lora_alpha[adapter]}
    return tensors, hyper


def llava_name(mpm: str) -> str:
    """An MPM stack name -> the LlavaForConditionalGeneration module/parameter name."""
    for src, dst in (("llm.hf.model.", "model.language_model."), ("llm.hf.lm_head", "lm_head"),
                     ("vision.model.", "model.vision_tower."),
                     ("connector.proj.0", "model.multi_modal_projector.linear_1"),
                     ("connector.proj.2", "model.multi_modal_projector.linear_2")):
        if mpm.startswith(src):
            return dst + mpm[len(src):]
    raise MPMError(f"{mpm} has no Llava counterpart")


def build_llava(stack: Any):
    """A LlavaForConditionalGeneration holding the stack's weights."""
    import copy

    from transformers import LlavaConfig, LlavaForConditionalGeneration

    llm, tower = stack.llm, stack.vision
    text_config = copy.deepcopy(llm.hf.config)
    vision_config = copy.deepcopy(tower.model.config)
    if tower.family == "siglip":
        vision_config.vision_use_head = False
    strategy = "full" if (tower.keep_cls or not tower.has_cls) else "default"
    feature = -1 if tower._select is None else int(tower._select)
    config = LlavaConfig(
        text_config=text_config, vision_config=vision_config, image_token_index=int(llm.image_token_id),
        vision_feature_layer=feature, vision_feature_select_strategy=strategy, projector_hidden_act="gelu",
        multimodal_projector_bias=True, image_seq_length=int(stack.num_image_tokens),
        tie_word_embeddings=bool(getattr(text_config, "tie_word_embeddings", False)),
    )
    dtype = next(llm.hf.parameters()).dtype
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    wanted = model.state_dict()
    ours: dict[str, torch.Tensor] = {}
    for name, value in stack.state_dict().items():
        if name.startswith(("llm.hf.", "vision.model.", "connector.proj.")) and ".lora_" not in name:
            ours[llava_name(name.replace(".base_layer.", "."))] = value
    for key in wanted:
        if key not in ours and key.endswith(("post_layernorm.weight", "post_layernorm.bias")):
            shape = wanted[key].shape  # unused by Llava's feature path: identity
            ours[key] = torch.ones(shape) if key.endswith("weight") else torch.zeros(shape)
    if config.tie_word_embeddings:
        wanted = {k: v for k, v in wanted.items() if k != "lm_head.weight"}
        ours.pop("lm_head.weight", None)
    missing, extra = sorted(set(wanted) - set(ours)), sorted(set(ours) - set(wanted))
    if missing or extra:
        raise MPMError(f"Llava layout mismatch: missing {missing[:4]}, unexpected {extra[:4]}")
    model.load_state_dict({k: v.to(dtype) for k, v in ours.items()}, strict=not config.tie_word_embeddings,
                          assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    return model.eval()


def build_processor(stack: Any, template: str):
    from transformers import CLIPImageProcessor, LlavaProcessor, SiglipImageProcessor

    tower, llm = stack.vision, stack.llm
    spec = tower.spec
    kwargs = dict(do_resize=spec.do_resize, size=dict(spec.size), resample=spec.resample,
                  do_rescale=spec.do_rescale, rescale_factor=spec.rescale_factor, do_normalize=spec.do_normalize,
                  image_mean=list(spec.image_mean), image_std=list(spec.image_std))
    if tower.family == "clip":
        image_processor = CLIPImageProcessor(do_center_crop=spec.do_center_crop,
                                             crop_size=dict(spec.crop_size or spec.size), **kwargs)
    else:
        image_processor = SiglipImageProcessor(**kwargs)
    image_token = llm.options.image_token
    prelude = PROCESSOR_PRELUDE.replace("@IMAGE@", image_token)
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=llm.tokenizer, patch_size=tower.model.config.patch_size,
        vision_feature_select_strategy="full" if (tower.keep_cls or not tower.has_cls) else "default",
        image_token=image_token, num_additional_image_tokens=1 if tower.has_cls else 0,
        chat_template=prelude + template,
    )


def export_llava(run_dir: Path, out: Path, stage: str | None = None, adapter: bool = False,
                 max_shard_size: str = "2GB", eval: str | None = None) -> Path:
    """Write ``out`` as a LlavaForConditionalGeneration folder with processor and model card."""
    from mpm_framework.composition import load_stack
    from mpm_framework.training.run_dir import stage_folder

    run_dir = Path(run_dir)
    stack = load_stack(run_dir, stage)
    reasons = refusal_reasons(stack)
    if reasons:
        raise MPMError("this run cannot be exported as Llava:\n- " + "\n- ".join(reasons))
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; choose a new --out folder (nothing was written)")
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    adapter_tensors, hyper = ({}, {})
    if lora_parameter_names(stack):
        if adapter:
            adapter_tensors, hyper = lora_state(stack)
            unload_lora(stack)  # unmerged base weights for the base model
            notes.append("LoRA (run.lora) is in adapter/ as a PEFT adapter over this base model")
        else:
            notes.append(f"LoRA (run.lora) merged into the weights ({merge_lora(stack)} layers)")
    elif adapter:
        raise ConfigError("--adapter: this run has no LoRA adapter")
    model = build_llava(stack)
    model.save_pretrained(str(out), max_shard_size=max_shard_size)
    template = stack.llm.tokenizer.chat_template or stack.llm.formatter.template
    stack.llm.tokenizer.chat_template = template
    processor = build_processor(stack, template)
    processor.save_pretrained(str(out))
    if adapter_tensors:
        _save_peft_adapter(model, adapter_tensors, hyper, out / "adapter")
    folder = stage_folder(run_dir, stage)
    if folder.parent != run_dir:
        folder = run_dir
    from omegaconf import OmegaConf

    from .model_card import write_model_card

    cfg = stack.config if stack.config is not None else OmegaConf.create({"model": {}, "data": {}})
    write_model_card(out, run_dir, cfg, title=out.name,
                     architecture=f"LLaVA-style model ({type(stack.llm.hf).__name__} + "
                                  f"{type(stack.vision.model).__name__} + mlp2x_gelu projector)",
                     reports=[Path(eval)] if eval else [], notes=notes)
    return out


def _save_peft_adapter(model: Any, tensors: dict[str, torch.Tensor], hyper: dict[str, Any], out: Path) -> None:
    """The adapter in peft's own format, over the exported Llava's module names."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    targets = sorted({llava_name(k.rsplit(".lora_", 1)[0]) for k in tensors})
    config = LoraConfig(r=int(hyper["r"]), lora_alpha=hyper["lora_alpha"], target_modules=targets)
    peft_model = get_peft_model(model, config)
    state = {"base_model.model." + llava_name(k.rsplit(".lora_", 1)[0]) + ".lora_" + k.rsplit(".lora_", 1)[1]: v
             for k, v in tensors.items()}
    result = set_peft_model_state_dict(peft_model, state)
    if getattr(result, "unexpected_keys", None):
        raise MPMError(f"adapter keys peft did not take: {result.unexpected_keys[:4]}")
    peft_model.save_pretrained(str(out))
    peft_model.unload()
