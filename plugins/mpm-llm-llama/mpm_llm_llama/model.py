"""Hugging Face causal LMs as MPM pivot LLMs.

:class:`HFCausalLM` wraps any ``AutoModelForCausalLM`` (Qwen2, Mistral,
BLOOM, ...) and its tokenizer behind the :class:`PivotLLM` contract;
:class:`LlamaLLM` is the same with transformers' ``LlamaForCausalLM``. The
transformers model does the compute: the plugin adds prompts in the model's
own chat format, image slots, answer-only loss, packing, a KV-cache decode
state for the core's decoding loop. LoRA is the core's (``run.lora``).
"""

from __future__ import annotations

import copy
import inspect
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.llm import LMOutput, PivotLLM
from mpm_framework.contracts.prompt import (
    IGNORE_INDEX,
    PromptEncoding,
    Turn,
    next_token_targets,
    predicting_positions,
)
from mpm_framework.errors import ConfigError, MPMError
from mpm_framework.training.lora import is_lora_parameter, merged_state_dict
from mpm_framework.training.packing import PACK_KEYS, block_causal_bias, pack_in_order

from .attention import resolve_attention
from .config import HFCausalLMConfig, LlamaLLMConfig
from .loading import add_image_token, build_random, load_pretrained, load_tokenizer
from .prompting import PromptFormatter, load_template

LOG = logging.getLogger("mpm_llm_llama")


@dataclass
class DecodeState:
    """What ``decode`` needs between steps: the KV cache, the attention mask
    over every token seen so far, and each row's next position id."""

    cache: Any
    attention_mask: torch.Tensor  # (B, T_seen)
    next_position: torch.Tensor  # (B,)


class HFCausalLM(PivotLLM):
    """Any transformers causal LM as a pivot LLM (registered as ``hf-causal-lm``)."""

    config_class: type = HFCausalLMConfig
    auto_model = True  # AutoModelForCausalLM; False: LlamaForCausalLM

    def __init__(self, hf_model: torch.nn.Module, tokenizer: Any, options: LlamaLLMConfig) -> None:
        super().__init__()
        self.hf = hf_model
        self.tokenizer = tokenizer
        self.options = options
        text_config = hf_model.config.get_text_config()
        template = load_template(options.chat_template) if options.chat_template else None
        if template:
            tokenizer.chat_template = template
        self.image_token_id = add_image_token(tokenizer, options.image_token)
        if len(tokenizer) > hf_model.get_input_embeddings().weight.shape[0]:
            hf_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        self.formatter = PromptFormatter(tokenizer, options.image_token, template)
        if not tokenizer.chat_template:  # saved with the checkpoint: the format it was trained in
            tokenizer.chat_template = self.formatter.template
        self.hidden_size = text_config.hidden_size
        self.num_layers = text_config.num_hidden_layers
        self.vocab_size = hf_model.get_output_embeddings().weight.shape[0]
        eos = tokenizer.eos_token_id
        end_of_turn = self.formatter.end_of_turn_id()
        self.eos_token_id = end_of_turn if end_of_turn is not None else eos
        if self.eos_token_id is None:
            raise ConfigError("the tokenizer defines no end-of-sequence token; generation could not stop")
        self.stop_token_ids = sorted({self.eos_token_id, *([eos] if eos is not None else [])})
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_id
        forward_params = inspect.signature(hf_model.forward).parameters
        self._takes_position_ids = "position_ids" in forward_params
        self._cache_kwarg = "cache" if "cache" in forward_params else "past_key_values"
        self.supports_packing = self._takes_position_ids and _builds_masks_with_transformers(hf_model)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_config(cls, config: LlamaLLMConfig, context: BuildContext | None = None) -> HFCausalLM:
        options, meta = config, bool(context and context.meta)
        attn = resolve_attention(options.attn_implementation)
        if options.path:
            hf_model = load_pretrained(options, cls.auto_model, attn, meta)
            try:
                tokenizer = load_tokenizer(options)
            except ConfigError:
                if not meta:
                    raise
                # Planning needs shapes, not text: an architecture card (config.json
                # alone) plans without the checkpoint's tokenizer files.
                from .toy import byte_tokenizer

                tokenizer = byte_tokenizer()
        else:
            tokenizer = load_tokenizer(options)
            hf_model = build_random(options, tokenizer, cls.auto_model, attn, meta)
        model = cls(hf_model, tokenizer, options)
        if options.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        return model

    @classmethod
    def from_pretrained(cls, path: str | Path, **options: Any) -> HFCausalLM:
        """``LlamaLLM.from_pretrained("ckpt_dir", dtype="bf16")``: config fields as keywords."""
        return cls.from_config(cls.config_class(**options, path=str(path)), BuildContext())

    def quantize_weights(self, mode: str) -> int:
        """``model.llm.quantize`` applied to the loaded weights (int8: every linear
        layer but the LM head), as ``from_config`` applies it at build time."""
        from .loading import quantize_model

        return quantize_model(self.hf, mode)

    # -- parameters ----------------------------------------------------------------
    def trainable_groups(self) -> dict[str, list[str]]:
        """``embeddings``, ``layers`` (decoder blocks and final norm), ``lm_head``
        and, with ``run.lora`` adapters injected, ``lora``. Names are exact parameter
        names (a tied LM head is listed under the embedding's name)."""
        names = {id(p): n for n, p in self.named_parameters()}
        embed = [names[id(p)] for p in self.hf.get_input_embeddings().parameters()]
        head = [names[id(p)] for p in self.hf.get_output_embeddings().parameters() if id(p) in names]
        lora = [n for n in names.values() if is_lora_parameter(n)]
        taken = set(embed) | set(head) | set(lora)
        layers = [n for n in names.values() if n not in taken]
        groups = {"embeddings": embed, "layers": layers, "lm_head": head}
        if lora:
            groups["lora"] = lora
        return groups

    def enable_gradient_checkpointing(self) -> None:
        kwargs = {"use_reentrant": False}  # works with frozen inputs (LoRA, frozen embeddings)
        if hasattr(self.hf, "activation_checkpointing_enable"):  # transformers >= 5.2x
            self.hf.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.hf.config.use_cache = False

    # -- text ------------------------------------------------------------------------
    def format_prompt(self, turns: list[Turn], num_image_tokens: int = 0,
                      add_generation_prompt: bool = False) -> PromptEncoding:
        return self.formatter.encode(turns, num_image_tokens, add_generation_prompt)

    def encode_text(self, text: str) -> PromptEncoding:
        ids = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        if not ids or ids[-1] != self.tokenizer.eos_token_id:
            ids.append(self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.eos_token_id)
        return PromptEncoding(ids, [IGNORE_INDEX, *ids[1:]], [t == self.image_token_id for t in ids])

    def decode_text(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def pack_sequences(self, encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
        if not self.supports_packing:
            return encodings
        return pack_in_order(encodings, max_length)

    def collate(self, encodings: list[PromptEncoding], padding_side: str = "right") -> dict[str, torch.Tensor]:
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', not {padding_side!r}")
        if not encodings:
            raise MPMError("cannot collate an empty list of encodings")
        width = max(len(e) for e in encodings)
        packed = any(k in e.extra for e in encodings for k in PACK_KEYS)
        columns: dict[str, list[list[int]]] = {k: [] for k in ("input_ids", "labels", "image_mask", "attention_mask")}
        if packed:
            columns.update({"position_ids": [], "sequence_ids": []})
        for e in encodings:
            n = len(e)
            rows = {
                "input_ids": (e.input_ids, self.pad_token_id),
                "labels": (e.labels, IGNORE_INDEX),
                "image_mask": ([int(m) for m in e.image_mask], 0),
                "attention_mask": ([1] * n, 0),
            }
            if packed:
                rows["position_ids"] = (e.extra.get("position_ids", list(range(n))), 0)
                rows["sequence_ids"] = (e.extra.get("sequence_ids", [1] * n), 0)
            for key, (row, fill) in rows.items():
                pad = [fill] * (width - n)
                columns[key].append(pad + list(row) if padding_side == "left" else list(row) + pad)
        batch = {k: torch.tensor(v, dtype=torch.long) for k, v in columns.items()}
        batch["image_mask"] = batch["image_mask"].bool()
        return batch

    # -- compute -----------------------------------------------------------------------
    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        embedding = self.hf.get_input_embeddings()
        device = embedding.weight.device
        if device.type == "meta":  # offloaded by accelerate (inference.offload): its hook moves the ids
            return embedding(input_ids)
        return embedding(input_ids.to(device))

    def _attention_inputs(self, batch: dict[str, torch.Tensor], embeds: torch.Tensor) -> dict[str, Any]:
        device = embeds.device
        if "sequence_ids" in batch:
            if not self.supports_packing:
                raise MPMError(f"{type(self.hf).__name__} does not support packed rows; set data.packing=false")
            return {"attention_mask": block_causal_bias(batch["sequence_ids"].to(device), embeds.dtype),
                    "position_ids": batch["position_ids"].to(device)}
        mask = batch["attention_mask"].to(device)
        inputs: dict[str, Any] = {"attention_mask": mask}
        if self._takes_position_ids:  # left padding: positions count real tokens only
            inputs["position_ids"] = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
        return inputs

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM head on final hidden states, as the transformers model applies it."""
        logits = self.hf.get_output_embeddings()(hidden)
        config = self.hf.config.get_text_config()
        scale = getattr(config, "logit_scale", None)  # Cohere
        if isinstance(scale, (int, float)) and scale != 1:
            logits = logits * scale
        cap = getattr(config, "final_logit_softcapping", None)  # Gemma 2/3
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        batch: dict[str, torch.Tensor],
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> LMOutput:
        inputs = self._attention_inputs(batch, inputs_embeds)
        hidden_states = None
        if labels is None or not self.options.answer_only_head:
            out = self.hf(inputs_embeds=inputs_embeds, use_cache=False,
                          output_hidden_states=output_hidden_states, **inputs)
            logits = out.logits
            if output_hidden_states:
                hidden_states = tuple(out.hidden_states)
            if labels is None:
                return LMOutput(None, logits, hidden_states, 0)
            shifted = next_token_targets(labels).to(logits.device)
            selected = shifted != IGNORE_INDEX
            n = int(selected.sum())
            loss = _mean_ce(predicting_positions(logits)[selected], shifted[selected], logits)
            return LMOutput(loss, logits, hidden_states, n)
        # Answer-only head: the decoder runs on every token, the vocabulary
        # projection only where a label exists (most prompt tokens have none).
        out = self.hf.base_model(inputs_embeds=inputs_embeds, use_cache=False,
                                 output_hidden_states=output_hidden_states, **inputs)
        hidden = out.last_hidden_state
        if output_hidden_states:
            hidden_states = tuple(out.hidden_states)
        shifted = next_token_targets(labels).to(hidden.device)
        selected = shifted != IGNORE_INDEX
        n = int(selected.sum())
        logits = self._head(predicting_positions(hidden)[selected])
        loss = _mean_ce(logits, shifted[selected], hidden)
        return LMOutput(loss, None, hidden_states, n)

    # -- incremental decoding --------------------------------------------------------------
    def _step(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any):
        kwargs: dict[str, Any] = {self._cache_kwarg: cache, "attention_mask": mask}
        if self._takes_position_ids:
            kwargs["position_ids"] = positions
        out = self.hf(inputs_embeds=embeds, use_cache=True, logits_to_keep=1, **kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = out.past_key_values
        return out.logits[:, -1], new_cache

    def prefill(self, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, DecodeState]:
        from transformers import DynamicCache

        from .kv_cache import use_growing_layers

        mask = batch["attention_mask"].to(inputs_embeds.device)
        if not bool(mask[:, -1].all()):
            raise MPMError("prefill needs left-padded prompts: collate(..., padding_side='left')")
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
        cache = DynamicCache(config=self.hf.config)
        use_growing_layers(cache)  # decode steps append in place instead of copying the cache
        logits, cache = self._step(inputs_embeds, mask, positions, cache)
        return logits, DecodeState(cache, mask, mask.long().sum(-1))

    def decode(self, token_ids: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        embeds = self.embed_tokens(token_ids.reshape(-1, 1))
        mask = torch.cat([state.attention_mask, state.attention_mask.new_ones(embeds.shape[0], 1)], 1)
        cache = _copy_cache(state.cache)  # states stay immutable: beams may branch from one
        logits, cache = self._step(embeds, mask, state.next_position[:, None], cache)
        return logits, DecodeState(cache, mask, state.next_position + 1)

    def extend_state(self, token_ids: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        """Several tokens per row in one forward pass over the cache (a chat's new
        turn); ``state`` stays usable (the cache is copied as in ``decode``)."""
        embeds = self.embed_tokens(token_ids.to(state.attention_mask.device))
        added = embeds.shape[1]
        mask = torch.cat([state.attention_mask, state.attention_mask.new_ones(embeds.shape[0], added)], 1)
        positions = state.next_position[:, None] + torch.arange(added, device=mask.device)
        logits, cache = self._step(embeds, mask, positions, _copy_cache(state.cache))
        return logits, DecodeState(cache, mask, state.next_position + added)

    def reorder_state(self, state: DecodeState, index: torch.Tensor) -> DecodeState:
        cache = _copy_cache(state.cache)
        index = index.to(state.attention_mask.device)
        cache.reorder_cache(index)
        return DecodeState(cache, state.attention_mask.index_select(0, index),
                           state.next_position.index_select(0, index))

    def merge_decode_states(self, states: list[DecodeState]) -> DecodeState | None:
        """One state holding the rows of ``states`` in order (the server adds newly
        prefilled requests to its running batch without prefilling the running rows
        again). States seen over fewer tokens are left-padded along the sequence:
        zero keys and values under a zero attention mask, which is exactly what left
        padding in ``prefill`` gives, so each row attends over the same tokens as in
        its own state; positions are per row and stay as they were. None when a
        cache is not transformers' plain dynamic cache (sliding-window, quantised or
        static layers keep lengths or offsets that padding would break)."""
        from transformers.cache_utils import DynamicLayer

        from .kv_cache import GrowingLayer

        if not states:
            return None
        caches = [getattr(state.cache, "layers", None) for state in states]
        if any(layers is None or len(layers) != len(caches[0]) for layers in caches):
            return None
        plain = (DynamicLayer, GrowingLayer)
        if any(type(layer) not in plain or not layer.is_initialized for layers in caches for layer in layers):
            return None
        lengths = [state.attention_mask.shape[1] for state in states]
        if any(layer.keys.shape[-2] != n for layers, n in zip(caches, lengths) for layer in layers):
            return None
        length = max(lengths)
        merged = _copy_cache(states[0].cache)
        for i, layer in enumerate(merged.layers):
            layer.keys = torch.cat([F.pad(layers[i].keys, (0, 0, length - n, 0)) for layers, n in zip(caches, lengths)])
            layer.values = torch.cat([F.pad(layers[i].values, (0, 0, length - n, 0))
                                      for layers, n in zip(caches, lengths)])
        mask = torch.cat([F.pad(state.attention_mask, (length - n, 0)) for state, n in zip(states, lengths)])
        return DecodeState(merged, mask, torch.cat([state.next_position for state in states]))

    # -- io --------------------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        """A complete Hugging Face checkpoint (safetensors, config, tokenizer with
        the image token and chat template) that ``path=`` loads back. LoRA adapters
        (``run.lora``) are saved merged into the weights; the model keeps them."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if any(is_lora_parameter(n) for n, _ in self.hf.named_parameters()):
            self.hf.save_pretrained(str(path), state_dict=merged_state_dict(self.hf))
        else:
            self.hf.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))


class LlamaLLM(HFCausalLM):
    """The LLaMA family through ``LlamaForCausalLM`` (registered as ``llama``)."""

    config_class = LlamaLLMConfig
    auto_model = False


def _mean_ce(logits: torch.Tensor, targets: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    if targets.numel() == 0:  # no answer tokens in the batch: a zero that keeps the graph
        return anchor.sum() * 0.0
    return F.cross_entropy(logits.float(), targets, reduction="mean")


def _copy_cache(cache: Any) -> Any:
    """A cache whose layers can be updated without touching ``cache`` (tensors are
    shared until replaced; transformers' dynamic layers replace, never write in
    place, and ``kv_cache.GrowingLayer`` writes in place only past every sharer's end)."""
    new = copy.copy(cache)
    if hasattr(cache, "layers"):
        new.layers = [copy.copy(layer) for layer in cache.layers]
    return new


def _builds_masks_with_transformers(model: torch.nn.Module) -> bool:
    """Whether the architecture takes its attention mask through transformers'
    mask utilities, which pass a prepared 4D mask through unchanged."""
    module = sys.modules.get(type(model).__module__)
    return module is not None and hasattr(module, "create_causal_mask")
