"""Find, load or build the transformers model and tokenizer behind a config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mpm_framework.config.choices import torch_dtype
from mpm_framework.errors import ConfigError, did_you_mean
from mpm_framework.security import FLAG as TRUST_FLAG
from mpm_framework.security import allow_remote_code

from .attention import fit_to_architecture
from .config import LlamaLLMConfig


def _offline() -> bool:
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def resolve_source(path: str) -> tuple[str, bool]:
    """(what to pass to ``from_pretrained``, whether it is a local directory)."""
    local = Path(path).expanduser()
    if local.is_dir():
        return str(local), True
    if local.exists():
        raise ConfigError(f"model.llm.path {path!r} is a file; point it at the checkpoint *directory* "
                          "(config.json, *.safetensors and the tokenizer files)")
    looks_local = path.startswith(("/", ".", "~")) or path.count("/") > 1 or "\\" in path
    if looks_local:
        raise ConfigError(
            f"LLM checkpoint path not found: {path!r} is not a directory. Point model.llm.path at a "
            "local Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer files) "
            "or at a hub id such as 'org/model' (needs network)."
        )
    return path, False


def _not_found(source: str, exc: BaseException) -> ConfigError:
    reason = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
    if "trust_remote_code" in str(exc):
        return ConfigError(
            f"{source!r} needs code shipped with the checkpoint. Pass {TRUST_FLAG} on the command line "
            "(trusting_remote_code() in Python) only if you trust its authors."
        )
    offline = _offline()
    return ConfigError(
        f"LLM checkpoint path not found: {source!r} is not a local directory and could not be fetched "
        f"from the Hugging Face hub{' (offline mode is on)' if offline else ''}: {reason}. Without "
        f"network, download it on a machine that has it (hf download {source} --local-dir DIR), copy "
        "DIR here and set model.llm.path=DIR."
        + ("" if offline else " Set HF_HUB_OFFLINE=1 to skip the hub's retries.")
    )


def _hub_kwargs(cfg: LlamaLLMConfig, source: str, local: bool) -> dict[str, Any]:
    # Code shipped with a checkpoint runs only when the command line asked for it
    # (--trust-remote-code); cfg.trust_remote_code may come from a downloaded run folder.
    kwargs: dict[str, Any] = {
        "trust_remote_code": allow_remote_code(source, local=local, config_value=cfg.trust_remote_code)}
    if not local:
        kwargs["local_files_only"] = _offline()
        if cfg.revision:
            kwargs["revision"] = cfg.revision
    return kwargs


def load_tokenizer(cfg: LlamaLLMConfig) -> Any:
    from transformers import AutoTokenizer

    source = cfg.tokenizer_path or cfg.path
    if not source:
        from .toy import byte_tokenizer

        return byte_tokenizer()
    resolved, local = resolve_source(source)
    try:
        return AutoTokenizer.from_pretrained(resolved, **_hub_kwargs(cfg, resolved, local))
    except (OSError, ValueError) as exc:
        if local:
            raise ConfigError(f"cannot load a tokenizer from {resolved}: {exc}") from None
        raise _not_found(resolved, exc) from None


def add_image_token(tokenizer: Any, image_token: str) -> int:
    """The id of ``image_token``, added to the tokenizer as a special token if missing."""
    from tokenizers import AddedToken

    if not image_token:
        raise ConfigError("model.llm.image_token must not be empty")
    if image_token not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(image_token, special=True, normalized=False)], special_tokens=True)
    return tokenizer.convert_tokens_to_ids(image_token)


def model_class(auto: bool) -> Any:
    if auto:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM


def concrete_class(cls: Any, config: Any) -> Any:
    """The architecture class an Auto class would pick for ``config`` (None when
    only the checkpoint's own code knows it)."""
    mapping = getattr(cls, "_model_mapping", None)
    if mapping is None:
        return cls
    try:
        return mapping[type(config)]
    except (KeyError, ValueError):
        return None


def load_pretrained(cfg: LlamaLLMConfig, auto: bool, attn: str, meta: bool) -> Any:
    """The transformers model stored at ``cfg.path`` (weights skipped on meta)."""
    from transformers import AutoConfig

    source, local = resolve_source(cfg.path)
    if local and not (Path(source) / "config.json").is_file():
        raise ConfigError(f"{source} holds no config.json: not a Hugging Face checkpoint directory")
    kwargs = _hub_kwargs(cfg, source, local)
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _not_found(source, exc) from None
    if not auto and config.model_type != "llama":
        raise ConfigError(
            f"{source} holds a '{config.model_type}' model, not a Llama one: choose the LLM "
            "'hf-causal-lm' (any transformers causal LM) instead of 'llama'"
        )
    cls = model_class(auto)
    attn = fit_to_architecture(concrete_class(cls, config), attn)
    dtype = torch_dtype(cfg.dtype, "model.llm.dtype")
    if meta:
        with torch.device("meta"):
            remote = {"trust_remote_code": True} if kwargs["trust_remote_code"] else {}
            return _from_config(cls, config, attn_implementation=attn, dtype=dtype, **remote)
    model = None
    if local and not kwargs["trust_remote_code"]:
        model = _load_in_place(cls, config, Path(source), attn, dtype)
    if model is None:
        try:
            model = cls.from_pretrained(source, config=config, dtype=dtype, attn_implementation=attn, **kwargs)
        except (OSError, ValueError) as exc:
            if local:
                raise ConfigError(f"cannot load model weights from {source}: {exc}") from None
            raise _not_found(source, exc) from None
    return quantize(model, cfg)


def quantize(model: Any, cfg: LlamaLLMConfig) -> Any:
    """``model`` with ``cfg.quantize`` applied (see :func:`quantize_model`)."""
    quantize_model(model, cfg.quantize)
    return model


def quantize_model(model: Any, mode: str) -> int:
    """Quantise a transformers causal LM in place (int8: every linear layer but
    the LM head); returns how many layers. The one path of both build-time
    ``model.llm.quantize`` and ``quantize_weights`` after a run's weights are loaded."""
    from mpm_framework.quantize import check_quantize, quantize_linear_int8

    if check_quantize(mode, "model.llm.quantize") == "none":
        return 0
    head = [n for n, m in model.named_modules() if m is model.get_output_embeddings()]
    return quantize_linear_int8(model, skip=head, field="model.llm.quantize")


def _load_in_place(cls: Any, config: Any, folder: Path, attn: str, dtype: torch.dtype) -> Any:
    """The model built with its parameters on the meta device and the folder's
    safetensors assigned to them (memory-mapped at the stored dtype, converted
    one tensor at a time otherwise): peak memory is the weights once. None when
    the checkpoint's names do not cover the model (a layout that transformers
    converts while loading): the caller then uses ``from_pretrained``."""
    from accelerate import init_empty_weights

    from mpm_framework.weight_files import load_files_into, safetensors_files

    files = safetensors_files(folder)
    if not files:
        return None
    with init_empty_weights(include_buffers=False):  # buffers (rotary tables) are computed, not stored
        model = _from_config(cls, config, attn_implementation=attn, dtype=dtype)
    if load_files_into(model, files, dtype):
        return None
    return model.eval()  # as from_pretrained returns it


def _from_config(cls: Any, config: Any, **kwargs: Any) -> Any:
    """``AutoModelForCausalLM.from_config`` or a concrete class's ``_from_config``."""
    if hasattr(cls, "from_config"):
        return cls.from_config(config, **kwargs)
    kwargs.pop("trust_remote_code", None)
    return cls._from_config(config, **kwargs)


def build_random(cfg: LlamaLLMConfig, tokenizer: Any, auto: bool, attn: str, meta: bool) -> Any:
    """A randomly initialised model of ``cfg.tiny``'s sizes (seeded, without
    touching the caller's random state)."""
    from transformers import AutoConfig, LlamaConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    tiny = cfg.tiny
    vocab = tiny.vocab_size or len(tokenizer)
    if vocab < len(tokenizer):
        raise ConfigError(f"model.llm.tiny.vocab_size={vocab} is smaller than the tokenizer ({len(tokenizer)})")
    sizes = dict(
        vocab_size=vocab, hidden_size=tiny.hidden_size, intermediate_size=tiny.intermediate_size,
        num_hidden_layers=tiny.num_layers, num_attention_heads=tiny.num_heads,
        num_key_value_heads=tiny.num_kv_heads, max_position_embeddings=tiny.max_position_embeddings,
        tie_word_embeddings=tiny.tie_word_embeddings, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    if not auto:
        if cfg.model_type != "llama":
            raise ConfigError(f"the LLM 'llama' builds Llama models; for model_type={cfg.model_type!r} "
                              "choose the LLM 'hf-causal-lm'")
        config = LlamaConfig(**sizes)
    else:
        if cfg.model_type not in CONFIG_MAPPING:
            raise ConfigError(f"unknown model_type {cfg.model_type!r}.{did_you_mean(cfg.model_type, CONFIG_MAPPING.keys())}")
        config = AutoConfig.for_model(cfg.model_type, **sizes)
    cls = model_class(auto)
    attn = fit_to_architecture(concrete_class(cls, config), attn)
    dtype = torch_dtype(cfg.dtype, "model.llm.dtype")
    if meta:
        with torch.device("meta"):
            return _from_config(cls, config, attn_implementation=attn, dtype=dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        model = _from_config(cls, config, attn_implementation=attn, dtype=dtype)
    return quantize(model, cfg)
