"""``mpm import llava-hf``: a transformers ``LlavaForConditionalGeneration``
folder (LLaVA-1.5 and its descendants) -> a run folder.

The folder is loaded with transformers itself (every key layout it reads,
legacy ``language_model.model.*`` or current ``model.language_model.*``), then
split into the components MPM composes:

=========================================  =========================================
Llava                                      MPM
=========================================  =========================================
``language_model`` (+ ``lm_head``)         ``llm.hf.model.*`` / ``llm.hf.lm_head.*``
                                           (a ``*ForCausalLM`` folder: ``llama``, or
                                           ``hf-causal-lm`` for other families)
``vision_tower`` (CLIP / SigLIP)           ``vision.model.*`` (a vision-model folder
                                           with the image processor's config)
``multi_modal_projector.linear_1``         ``connector.proj.0`` (mlp2x_gelu)
``multi_modal_projector.linear_2``         ``connector.proj.2``
``vision_feature_layer``                   ``model.vision.feature_layer``
``vision_feature_select_strategy``         ``model.vision.keep_cls`` (full: True)
``image_token_index`` / ``<image>``        ``model.llm.image_token``
processor / tokenizer chat template        ``model.llm.chat_template`` (LLaVA-1.5's
                                           ``USER: ... ASSISTANT:`` when it has none)
=========================================  =========================================

Refused with the reason: a projector activation other than GELU, a projector
without bias, several feature layers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from mpm_framework.errors import ConfigError, MPMError

from .run_folder import dtype_option, prepare_out, write_run

# LLaVA-1.5's conversation format ("USER: <image>\nQ ASSISTANT: A</s>") over
# string contents, for checkpoints whose tokenizer has no chat template.
LLAVA_15_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }} "
    "{% elif m['role'] == 'user' %}USER: {{ m['content'] }} "
    "{% else %}ASSISTANT: {{ m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
VISION_FAMILIES = {"clip_vision_model": "clip", "siglip_vision_model": "siglip"}


def load_llava(path: Path, dtype: torch.dtype | None = None):
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    config_file = path / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{path} has no config.json: not a transformers checkpoint folder")
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    if model_type != "llava":
        raise ConfigError(f"{path} holds a '{model_type}' model, not 'llava' (LlavaForConditionalGeneration)")
    config = LlavaConfig.from_pretrained(str(path))
    check_expressible(config)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return LlavaForConditionalGeneration.from_pretrained(str(path), **kwargs)


def check_expressible(config: Any) -> None:
    """Llava variants the MPM stack cannot compute the same way are refused."""
    if config.projector_hidden_act != "gelu":
        raise MPMError(f"projector activation {config.projector_hidden_act!r}: the mlp2x_gelu connector uses GELU")
    if not getattr(config, "multimodal_projector_bias", True):
        raise MPMError("a projector without bias has no MPM connector (mlp2x_gelu has biases)")
    if not isinstance(config.vision_feature_layer, int):
        raise MPMError(f"several vision feature layers {config.vision_feature_layer}: the MPM towers take one")
    family = VISION_FAMILIES.get(config.vision_config.model_type)
    if family is None:
        raise MPMError(f"vision tower '{config.vision_config.model_type}': MPM has CLIP and SigLIP towers")
    if config.vision_feature_select_strategy not in ("default", "full"):
        raise MPMError(f"vision_feature_select_strategy {config.vision_feature_select_strategy!r}")


def split_llava(model: Any) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    """(causal LM, vision model, connector tensors) sharing the Llava's weights."""
    from transformers import AutoModelForCausalLM, CLIPVisionModel, SiglipVisionModel

    config = model.config
    inner = model.model
    text_config = config.text_config
    with torch.device("meta"):
        lm = AutoModelForCausalLM.from_config(text_config)
    lm_state = {"model." + k: v for k, v in inner.language_model.state_dict().items()}
    lm_state["lm_head.weight"] = model.lm_head.weight
    missing = set(lm.state_dict()) - set(lm_state)
    if text_config.tie_word_embeddings:
        missing.discard("lm_head.weight")
    if missing:
        raise MPMError(f"the language model lacks {sorted(missing)[:4]}")
    lm.load_state_dict(lm_state, strict=False, assign=True)
    if text_config.tie_word_embeddings:
        lm.tie_weights()
    cls = CLIPVisionModel if config.vision_config.model_type == "clip_vision_model" else SiglipVisionModel
    with torch.device("meta"):
        tower = cls(config.vision_config)
    tower_state = inner.vision_tower.state_dict()
    own = tower.state_dict()
    if set(own) != set(tower_state):  # the tower is the same class, prefixes may differ by version
        raise MPMError(f"unexpected vision tower layout: {sorted(set(own) ^ set(tower_state))[:4]}")
    tower.load_state_dict(tower_state, assign=True)
    proj = inner.multi_modal_projector
    connector = {"connector.proj.0.weight": proj.linear_1.weight, "connector.proj.0.bias": proj.linear_1.bias,
                 "connector.proj.2.weight": proj.linear_2.weight, "connector.proj.2.bias": proj.linear_2.bias}
    return lm, tower, {k: v.detach() for k, v in connector.items()}


def _chat_template(path: Path, tokenizer: Any) -> str:
    """The tokenizer's own template if it renders string contents; else LLaVA-1.5's."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template:
        try:
            tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
            return ""  # keep it: the LLM loads it from the tokenizer files
        except Exception:  # a processor-style template that wants content lists
            pass
    return LLAVA_15_TEMPLATE


def import_llava(path: Path, out: Path, dtype: str | None = None, chat_template: str | None = None) -> Path:
    """Write the run folder of a transformers Llava checkpoint folder."""
    from transformers import AutoTokenizer

    path = Path(path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"llava-hf import needs the checkpoint folder, got {path}")
    model = load_llava(path)
    config = model.config
    lm, tower, connector = split_llava(model)
    folder = prepare_out(out)
    run = folder.parent
    dtype_name = dtype_option(dtype, dict(model.named_parameters()))

    llm_dir, vision_dir = folder / "llm", folder / "vision"
    lm.save_pretrained(str(llm_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    image_token = tokenizer.convert_ids_to_tokens(config.image_token_index)
    if not image_token:
        raise MPMError(f"the tokenizer has no token with the image id {config.image_token_index}")
    tokenizer.save_pretrained(str(llm_dir))
    tower.save_pretrained(str(vision_dir))
    if (path / "preprocessor_config.json").is_file():
        shutil.copy(path / "preprocessor_config.json", vision_dir / "preprocessor_config.json")

    family = VISION_FAMILIES[config.vision_config.model_type]
    keep_cls = config.vision_feature_select_strategy == "full" and family == "clip"
    text_type = config.text_config.model_type
    llm_cfg: dict[str, Any] = {"name": "llama" if text_type == "llama" else "hf-causal-lm", "path": str(llm_dir),
                               "dtype": dtype_name, "image_token": image_token}
    template = chat_template if chat_template is not None else _chat_template(path, tokenizer)
    if template:
        llm_cfg["chat_template"] = template
    model_cfg = {
        "llm": llm_cfg,
        "vision": {"name": family, "path": str(vision_dir), "dtype": dtype_name,
                   "feature_layer": int(config.vision_feature_layer), "keep_cls": keep_cls},
        "connector": {"name": "mlp2x_gelu"},
        "languages": ["en"],
    }
    summary = {"llava": {"text_model_type": text_type, "vision": family,
                         "vision_feature_layer": config.vision_feature_layer,
                         "vision_feature_select_strategy": config.vision_feature_select_strategy,
                         "image_token_index": config.image_token_index}}
    return write_run(run, model_cfg, connector, str(path.resolve()), "llava-hf", summary)
