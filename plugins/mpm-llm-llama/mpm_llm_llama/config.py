"""Config dataclasses of the plugin's LLMs (torch-free: read by ``mpm plugins list``
and by config validation before any model code is imported)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mpm_framework.config.choices import Dtype, Quantize

ATTENTION_BACKENDS = ("sdpa", "eager", "xformers")


@dataclass
class TinyConfig:
    """Sizes for a randomly initialised model, used when ``path`` is empty
    (tests, and the toy world that pretrains its pivot from scratch)."""

    vocab_size: int = 0  # 0: the tokenizer's size
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = False
    seed: int = 0


@dataclass
class LlamaLLMConfig:
    """``model.llm`` for ``llama`` (``LlamaForCausalLM``).

    ``path`` is a local Hugging Face checkpoint directory (config + safetensors +
    tokenizer files) or a hub id (online only). Empty: a random model of the
    ``tiny`` sizes with the tokenizer from ``tokenizer_path`` (a byte-level
    tokenizer when that is empty too).

    LoRA is the core's ``run.lora``: the former ``lora`` key here is refused,
    naming the run.lora settings to write.
    """

    name: str = "llama"
    path: str = ""
    tokenizer_path: str = ""  # default: ``path``
    revision: str = ""  # hub revision (branch, tag or commit); local paths ignore it
    model_type: str = "llama"  # architecture of a random model (``hf-causal-lm`` accepts any)
    tiny: TinyConfig = field(default_factory=TinyConfig)
    dtype: Dtype = "fp32"  # fp32 | bf16 | fp16
    # none | int8: inference with int8 linear layers (CPU, dtype fp32; the LM head stays fp32).
    # See mpm_framework.quantize for the backend and why.
    quantize: Quantize = "none"
    attn_implementation: str = "sdpa"  # sdpa | eager | xformers (GPU only; sdpa on CPU)
    gradient_checkpointing: bool = False
    # Ignored (with a warning): a config cannot switch on code shipped with a checkpoint; the command
    # line's --trust-remote-code does (mpm_framework.security). Kept so older configs still load.
    trust_remote_code: bool = False
    chat_template: str = ""  # a Jinja template or a path to a .jinja file; default: the tokenizer's own
    image_token: str = "<image_pad>"  # placeholder token for image slots, added to the tokenizer if missing
    answer_only_head: bool = True  # training: run the LM head only where labels exist


@dataclass
class HFCausalLMConfig(LlamaLLMConfig):
    """``model.llm`` for ``hf-causal-lm``: any ``AutoModelForCausalLM`` (Qwen2,
    Mistral, BLOOM/BLOOMZ, ...). A random model takes ``model_type``'s architecture."""

    name: str = "hf-causal-lm"
