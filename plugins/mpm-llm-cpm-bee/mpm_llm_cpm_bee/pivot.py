"""CPM-Bee behind the PivotLLM contract: VisCPM's segment-dictionary prompts,
batching of the per-token fields, training forward and KV-cached decoding.

Parameter names are the official checkpoint keys, so a ChatStack's state dict
holds the LLM under ``llm.`` exactly as VisCPM's checkpoints do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from mpm_framework.config.choices import torch_dtype
from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.llm import LMOutput, PivotLLM
from mpm_framework.contracts.prompt import IGNORE_INDEX, IMAGE_MARKER, PromptEncoding, Turn
from mpm_framework.errors import ConfigError, DataError

from .checkpoint import check_keys as check_checkpoint_keys
from .checkpoint import find_checkpoint, infer_arch, llm_state_dict, read_state_dict
from .config import ATTENTION_BACKENDS, CPMBeeArch, CPMBeeLLMConfig, check_choice, get_arch
from .model import CPMBeeModel, LayerCache, TokenFields
from .structured import ANSWER_KEY, IMAGE_KEY, encode_structured, relation_bucket
from .tokenizer import CPMBeeTokenizer, escape

# Per-token fields of PromptEncoding.extra and their padding values.
TOKEN_FIELDS = {"input_sub": 0, "position": 0, "context": 0, "segment": 0, "num_segments": 0,
                "segment_rel_offset": 0, "sample_ids": 0, "span": 0, "label_sub": 0}
ROLES = ("system", "user", "assistant")


@dataclass
class DecodeState:
    """The KV cache plus what the next token's attention needs, one row per sequence."""

    caches: list[LayerCache]
    keys: TokenFields  # fields of every cached token
    segment_rel: torch.Tensor  # (B, R)
    next_position: torch.Tensor  # (B,)
    answer_segment: torch.Tensor  # (B,)
    num_segments: torch.Tensor  # (B,)
    segment_rel_offset: torch.Tensor  # (B,)
    answer_segments: torch.Tensor  # (B, A): segment of each answer slot, in order (-1: none)
    answer_index: torch.Tensor  # (B,): the slot being generated

    def index_select(self, index: torch.Tensor) -> DecodeState:
        caches = [None if c is None else (c[0].index_select(0, index), c[1].index_select(0, index))
                  for c in self.caches]
        rows = {f.name: getattr(self, f.name).index_select(0, index) for f in fields(self)
                if f.name not in ("caches", "keys")}
        return DecodeState(caches=caches, keys=self.keys.index_select(index), **rows)


class CPMBeeLLM(CPMBeeModel, PivotLLM):
    """CPM-Bee 1B/2B/5B/10B (or a tiny random one) as a pivot LLM."""

    supports_packing = True
    #: VisCPM's decoding (``viscpm_chat.py``: beam 3, repetition penalty 1.1 over
    #: the generated tokens only as CPM-Bee's ``apply_repetition_penalty``, 512
    #: tokens, beam length penalty 3, beam logits divided by temperature 0.7 as
    #: ``viscpm_chat.py`` passes to ``VLLMCPMBeeBeamSearch``): GenerationConfig
    #: fields that chat, eval and ``mpm serve`` apply under the caller's options.
    generation_defaults = {"num_beams": 3, "repetition_penalty": 1.1, "repetition_scope": "generated",
                           "max_new_tokens": 512, "length_penalty": 3.0, "beam_temperature": 0.7}

    def __init__(self, arch: CPMBeeArch, tokenizer: CPMBeeTokenizer, config: CPMBeeLLMConfig | None = None) -> None:
        config = config or CPMBeeLLMConfig()
        super().__init__(arch, backend=check_choice(config.attention, ATTENTION_BACKENDS, "attention"))
        self.config = config
        self.tokenizer = tokenizer
        self.hidden_size = arch.dim_model
        self.vocab_size = arch.vocab_size
        self.num_layers = arch.num_layers
        self.eos_token_id = tokenizer.eos_id
        self.pad_token_id = tokenizer.pad_id
        self.gradient_checkpointing = bool(config.gradient_checkpointing)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_config(cls, config: CPMBeeLLMConfig, context: BuildContext | None = None) -> CPMBeeLLM:
        cfg, meta = config, bool(context and context.meta)
        dtype = torch_dtype(cfg.dtype, "model.llm.dtype")
        arch = get_arch(cfg.size)
        overrides = dict(cfg.arch or {})
        unknown = set(overrides) - {f.name for f in fields(CPMBeeArch)}
        if unknown:
            raise ConfigError(f"model.llm.arch: unknown field(s) {', '.join(sorted(unknown))}; "
                              f"fields: {', '.join(f.name for f in fields(CPMBeeArch))}")
        if overrides.get("mask_modules") is not None:
            overrides["mask_modules"] = tuple(tuple(bool(x) for x in m) for m in overrides["mask_modules"])
        arch = arch.replace(**overrides)

        vocab_path = Path(cfg.vocab) if cfg.vocab else None
        if meta and vocab_path is not None and not vocab_path.is_file():
            vocab_path = None  # planning on the meta device needs shapes only
        weights = None
        if cfg.path and not (meta and not Path(cfg.path).exists()):
            weights, found_vocab, config_json = find_checkpoint(cfg.path)
            vocab_path = vocab_path or found_vocab
        if vocab_path is not None:
            tokenizer = CPMBeeTokenizer.from_file(vocab_path)
        elif arch.vocab_size == 0 or meta:
            tokenizer = CPMBeeTokenizer.builtin()
        else:
            raise ConfigError(f"cpm-bee size '{cfg.size}' needs its vocabulary: set model.llm.vocab to the "
                              "official vocab.txt (or put it beside the checkpoint)")
        if arch.vocab_size == 0:
            arch = arch.replace(vocab_size=tokenizer.vocab_size)

        state = None
        if weights is not None and not meta:
            state = llm_state_dict(read_state_dict(weights, dtype))  # converted on reading: one copy
            if config_json is not None:
                arch = CPMBeeArch.from_json_file(config_json)
            else:
                arch = infer_arch(state, base=arch)
            check_checkpoint_keys(state, arch, str(weights), strict=cfg.strict)
        elif weights is None and not meta and cfg.size.lower() != "tiny":
            raise ConfigError(f"cpm-bee size '{cfg.size}' needs its weights: set model.llm.path to the official "
                              "checkpoint (only size 'tiny' starts from random weights)")
        if not meta and tokenizer.vocab_size != arch.vocab_size:
            raise ConfigError(
                f"the vocabulary has {tokenizer.vocab_size} tokens but the model has {arch.vocab_size} "
                "embeddings: extension tokens (ids >= vocabulary size) would point at the wrong logits. "
                "Use the vocab.txt that belongs to the checkpoint.")

        if state is not None:
            with torch.device("meta"):
                model = cls(arch, tokenizer, cfg)
            model.load_state_dict(state, strict=cfg.strict, assign=True)
            model.to(dtype)
        else:
            model = cls(arch, tokenizer, cfg)
            if not meta and next(model.parameters()).device.type != "meta":
                model.init_weights(cfg.seed)
            model.to(dtype)
        if not meta:
            model.quantize_weights(cfg.quantize)
        return model

    def quantize_weights(self, mode: str) -> int:
        """``model.llm.quantize`` applied in place (int8: every linear layer; the
        tied LM head is the input embedding and stays float): at build time by
        ``from_config``, after a run's weights are loaded by ``load_stack``."""
        from mpm_framework.quantize import check_quantize, quantize_linear_int8

        if check_quantize(mode, "model.llm.quantize") == "none":
            return 0
        return quantize_linear_int8(self, field="model.llm.quantize")

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides: Any) -> CPMBeeLLM:
        """Load an official/VisCPM/converted checkpoint (file or directory)."""
        return cls.from_config(CPMBeeLLMConfig(path=str(path), **overrides), BuildContext())

    def save_pretrained(self, path: str | Path) -> None:
        """``model.safetensors`` (official keys) + ``config.json`` + ``vocab.txt``."""
        from .checkpoint import save_safetensors

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        CPMBeeTokenizer.write_vocab(self.tokenizer.tokens(), out / "vocab.txt")
        save_safetensors({k: v.detach() for k, v in self.state_dict().items()}, self.arch, out)

    def trainable_groups(self) -> dict[str, list[str]]:
        return {
            "embeddings": ["input_embedding."],
            "position_bias": ["position_bias."],
            "layers": ["encoder.layers."],
            "attention": [f"encoder.layers.{i}.self_att." for i in self.arch.attention_layers],
            "ffn": [f"encoder.layers.{i}.ffn." for i in self.arch.ffn_layers],
            "norm": ["encoder.output_layernorm."],
        }

    def enable_gradient_checkpointing(self) -> None:
        self.gradient_checkpointing = True

    @property
    def dtype(self) -> torch.dtype:
        return self.input_embedding.weight.dtype

    # -- prompts -----------------------------------------------------------------
    def conversation_dict(self, turns: list[Turn], num_image_tokens: int = 0,
                          add_generation_prompt: bool = False) -> dict[str, str]:
        """VisCPM's chat input: ``{"image": slots, "context": "User: ...\\nAI: ...\\n",
        "question": q, "<ans>": answer}`` (texts escaped). The last assistant turn
        is the answer; earlier rounds form the context."""
        for turn in turns:
            if turn.role not in ROLES:
                raise DataError(f"unknown role '{turn.role}' in a conversation; roles: {', '.join(ROLES)}")
        images = sum(t.content.count(IMAGE_MARKER) for t in turns)
        answer: str | None = None
        body = [t for t in turns if t.role != "system"]
        if not add_generation_prompt and body and body[-1].role == "assistant":
            answer = body[-1].content
            body = body[:-1]
        question = ""
        if body and body[-1].role == "user":
            question = body[-1].content
            body = body[:-1]

        def clean(text: str) -> str:
            return escape(text.replace(IMAGE_MARKER, "").strip())

        data: dict[str, str] = {}
        if num_image_tokens > 0:
            for i in range(images):
                data[IMAGE_KEY if i == 0 else f"{IMAGE_KEY}_{i + 1}"] = "<unk>" * num_image_tokens
        system = "\n".join(clean(t.content) for t in turns if t.role == "system")
        if system:
            data["system"] = system
        context = "".join(f"{'User' if t.role == 'user' else 'AI'}: {clean(t.content)}\n" for t in body)
        data["context"] = context
        data["question"] = clean(question)
        data[ANSWER_KEY] = escape(answer) if answer is not None else ""
        return data

    def format_prompt(self, turns: list[Turn], num_image_tokens: int = 0,
                      add_generation_prompt: bool = False) -> PromptEncoding:
        data = self.conversation_dict(turns, num_image_tokens, add_generation_prompt)
        return self.encode_dict(data, generation=add_generation_prompt)

    def encode_text(self, text: str) -> PromptEncoding:
        """Plain text as one causal answer segment: ``{"<ans>": text}``."""
        return self.encode_dict({ANSWER_KEY: escape(text)})

    def encode_paint_prompt(self, text: str) -> PromptEncoding:
        """A text-to-image prompt as VisCPM-Paint encodes it (``viscpm_paint.py``):
        ``{"caption": text, "objects": ""}``, all context, no answer slot."""
        return self.encode_dict({"caption": escape(text), "objects": ""})

    def encode_dict(self, data: dict[str, Any], generation: bool = False) -> PromptEncoding:
        """Any CPM-Bee segment dictionary (texts escaped) -> a PromptEncoding.

        Training: labels follow the official targets — every answer token, and
        ``</s>`` where an answer segment ends (an extra ``</s>`` input is appended
        when the row ends inside an answer; nothing attends to it). Generation (as
        the official decoder): every answer slot under ``<ans>`` must be empty;
        the slots leave the prompt, which ends with the first slot's ``<s>``, and
        the slots are generated in turn (``next_answer_id`` moves to the next)."""
        enc = encode_structured(self.tokenizer, data, self.config.max_depth)
        ids, subs, context, segment = list(enc.ids), list(enc.subs), list(enc.context), list(enc.segment)
        tok = self.tokenizer
        answer_segments: list[int] = []
        keep = list(range(len(ids)))  # which tokens of the full layout the encoding holds
        if generation:
            keep, answer_segments = _generation_layout(enc)
            ids, subs, context, segment = ([row[i] for i in keep] for row in (ids, subs, context, segment))
            labels, label_subs = [IGNORE_INDEX] * len(ids), [0] * len(ids)
        else:
            labels, label_subs = [IGNORE_INDEX], [0]
            for t in range(1, len(ids)):
                if context[t - 1] == 0:
                    nxt = (tok.eos_id, 0) if ids[t] == tok.bos_id else (ids[t], subs[t])
                    labels.append(nxt[0])
                    label_subs.append(nxt[1])
                else:
                    labels.append(IGNORE_INDEX)
                    label_subs.append(0)
            if context[-1] == 0:
                ids.append(tok.eos_id)
                subs.append(0)
                context.append(0)
                segment.append(segment[-1])
                labels.append(tok.eos_id)
                label_subs.append(0)
            limit = self.config.max_length
            if len(ids) > limit:
                ids, subs, context, segment = ids[:limit], subs[:limit], context[:limit], segment[:limit]
                labels, label_subs = labels[:limit], label_subs[:limit]
        n = len(ids)
        slots = {i for begin, end in enc.image_spans for i in range(begin, end)}
        image_mask = [keep[i] in slots for i in range(min(n, len(keep)))] + [False] * max(0, n - len(keep))
        extra = {
            "input_sub": subs, "position": list(range(n)), "context": context, "segment": segment,
            "num_segments": [enc.num_segments] * n, "segment_rel_offset": [0] * n, "sample_ids": [0] * n,
            "span": [0] * n, "label_sub": label_subs, "segment_rel": list(enc.segment_rel),
        }
        if generation:
            extra["answer_segments"] = answer_segments
        return PromptEncoding(ids, labels, image_mask, extra)

    def split_answers(self, token_ids: list[int]) -> list[list[int]]:
        """Generated ids of a prompt with several answer slots -> one id list per
        slot (``NEXT_ANSWER`` separates them)."""
        answers: list[list[int]] = [[]]
        for t in token_ids:
            if int(t) == self.next_answer_id:
                answers.append([])
            else:
                answers[-1].append(int(t))
        return answers

    def fill_answers(self, data: dict[str, Any], token_ids: list[int]) -> dict[str, Any]:
        """A copy of ``data`` whose empty answer slots hold the generated texts,
        in slot order (the official ``CPMBeeGeneration.generate`` result)."""
        texts = iter(self.decode_text(ids) for ids in self.split_answers(token_ids))

        def fill(node: Any) -> Any:
            if isinstance(node, dict):
                return {k: fill(v) for k, v in node.items()}
            return next(texts, None)

        return {k: (fill(v) if k == ANSWER_KEY else v) for k, v in data.items()}

    @property
    def next_answer_id(self) -> int:
        """The extra logit column (after the vocabulary) that stands for "this
        answer slot is done, start the next one": the official decoder treats
        ``</s>`` that way before the last slot, but the core's loop ends a row on
        ``</s>``, so the choice gets its own id."""
        return self.vocab_size

    def decode_text(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode_plain(int(t) for t in token_ids if 0 <= int(t) < self.tokenizer.vocab_size)

    # -- batching ----------------------------------------------------------------
    def _extra(self, e: PromptEncoding) -> dict[str, Any]:
        if "segment_rel" not in e.extra:
            raise DataError("this PromptEncoding was not made by the cpm-bee LLM (its extra fields are missing)")
        return e.extra

    def collate(self, encodings: list[PromptEncoding], padding_side: str = "right") -> dict[str, torch.Tensor]:
        if not encodings:
            raise DataError("cannot collate an empty batch")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        width = max(len(e) for e in encodings)
        ext: dict[tuple[int, int], int] = {}
        rows: dict[str, list[list[int]]] = {k: [] for k in ("input_ids", "labels", "image_mask",
                                                            "attention_mask", *TOKEN_FIELDS)}
        for e in encodings:
            extra = self._extra(e)
            for token, sub in zip(e.input_ids, extra["input_sub"]):
                if sub:
                    ext.setdefault((token, sub), len(ext))
            labels = list(e.labels)
            for i, (label, sub) in enumerate(zip(e.labels, extra["label_sub"])):
                if sub and label != IGNORE_INDEX:
                    labels[i] = self.vocab_size + ext.setdefault((label, sub), len(ext))
            pad = width - len(e)
            values = {"input_ids": (e.input_ids, self.pad_token_id), "labels": (labels, IGNORE_INDEX),
                      "image_mask": ([int(m) for m in e.image_mask], 0), "attention_mask": ([1] * len(e), 0)}
            values.update({k: (extra[k], fill) for k, fill in TOKEN_FIELDS.items()})
            for key, (row, fill) in values.items():
                rows[key].append([fill] * pad + list(row) if padding_side == "left" else list(row) + [fill] * pad)
        batch = {k: torch.tensor(v, dtype=torch.long) for k, v in rows.items()}
        batch["image_mask"] = batch["image_mask"].bool()
        batch["context"] = batch["context"].bool()
        rel_width = max(len(self._extra(e)["segment_rel"]) for e in encodings)
        batch["segment_rel"] = torch.tensor(
            [self._extra(e)["segment_rel"] + [0] * (rel_width - len(self._extra(e)["segment_rel"]))
             for e in encodings], dtype=torch.long)
        # The extension table is shared by the batch; it is repeated per row so
        # that any row slicing of the batch keeps it consistent.
        if any("answer_segments" in e.extra for e in encodings):
            slots = [list(e.extra.get("answer_segments") or [e.extra["segment"][-1]]) for e in encodings]
            most = max(len(a) for a in slots)
            batch["answer_segments"] = torch.tensor([a + [-1] * (most - len(a)) for a in slots], dtype=torch.long)
        pairs = sorted(ext, key=ext.__getitem__)
        batch["ext_table_ids"] = torch.tensor([[p[0] for p in pairs]] * len(encodings), dtype=torch.long)
        batch["ext_table_sub"] = torch.tensor([[p[1] for p in pairs]] * len(encodings), dtype=torch.long)
        if not pairs:
            batch["ext_table_ids"] = batch["ext_table_ids"].reshape(len(encodings), 0)
            batch["ext_table_sub"] = batch["ext_table_sub"].reshape(len(encodings), 0)
        return batch

    def pack_sequences(self, encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
        """Consecutive encodings share a row (order kept, so image order is kept)
        while it fits; each keeps its own span id (no attention across spans) and
        relation table (``segment_rel_offset``), as the official packer does."""
        rows: list[list[PromptEncoding]] = []
        for e in encodings:
            if rows and sum(len(x) for x in rows[-1]) + len(e) <= max_length:
                rows[-1].append(e)
            else:
                rows.append([e])
        return [self._merge(row) if len(row) > 1 else row[0] for row in rows]

    def _merge(self, row: list[PromptEncoding]) -> PromptEncoding:
        ids, labels, image_mask = [], [], []
        extra: dict[str, list[int]] = {k: [] for k in (*TOKEN_FIELDS, "segment_rel")}
        for span, e in enumerate(row):
            x = self._extra(e)
            offset = len(extra["segment_rel"])
            ids += e.input_ids
            labels += e.labels
            image_mask += e.image_mask
            for k in ("input_sub", "context", "segment", "num_segments", "sample_ids", "label_sub"):
                extra[k] += x[k]
            extra["segment_rel_offset"] += [o + offset for o in x["segment_rel_offset"]]
            extra["span"] += [span] * len(e)
            extra["segment_rel"] += x["segment_rel"]
        extra["position"] = list(range(len(ids)))
        return PromptEncoding(ids, labels, image_mask, extra)

    def synthetic_batch(self, batch_size: int, seq_len: int, num_image_tokens: int = 0,
                        answer_len: int | None = None) -> dict[str, torch.Tensor]:
        """Shape-only batch: one context segment (image slots after the first
        token) and one answer segment of ``answer_len`` tokens."""
        answer_len = seq_len // 4 if answer_len is None else answer_len
        prompt = seq_len - answer_len
        filler = 1 if self.pad_token_id != 1 else 2
        ids = [filler] * seq_len
        labels = [IGNORE_INDEX] * prompt + ids[prompt:]
        image_mask = [False] + [True] * num_image_tokens + [False] * (seq_len - 1 - num_image_tokens)
        rel = [0, relation_bucket(0, 1, 8), relation_bucket(1, 0, 8), 0]
        extra = {"input_sub": [0] * seq_len, "position": list(range(seq_len)),
                 "context": [1] * prompt + [0] * answer_len, "segment": [0] * prompt + [1] * answer_len,
                 "num_segments": [2] * seq_len, "segment_rel_offset": [0] * seq_len, "sample_ids": [0] * seq_len,
                 "span": [0] * seq_len, "label_sub": [0] * seq_len, "segment_rel": rel}
        return self.collate([PromptEncoding(ids, labels, image_mask, extra)] * batch_size)

    # -- compute -----------------------------------------------------------------
    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Sub-0 embeddings; ``forward``/``prefill`` rotate the tokens whose sub is not 0."""
        return self.input_embedding.plain(input_ids)

    @staticmethod
    def _fields(batch: dict[str, torch.Tensor]) -> TokenFields:
        return TokenFields(batch["position"], batch["context"].bool(), batch["segment"], batch["num_segments"],
                           batch["segment_rel_offset"], batch["sample_ids"], batch["span"])

    def _input_hidden(self, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = inputs_embeds.to(self.dtype)
        return self.input_embedding.apply_sub(hidden, batch.get("input_sub"))

    def _ext_table(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        ids = batch.get("ext_table_ids")
        if ids is None or ids.numel() == 0:
            return None
        return self.input_embedding(ids[0], batch["ext_table_sub"][0])

    def forward(self, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor],
                labels: torch.Tensor | None = None, output_hidden_states: bool = False) -> LMOutput:
        """Full pass. With ``labels`` the output projection runs only where a label
        exists and ``logits`` is None; without, logits cover the vocabulary plus
        the batch's extension table."""
        hidden, _, states = self.run(self._input_hidden(inputs_embeds, batch), self._fields(batch),
                                     batch["segment_rel"], output_hidden_states=output_hidden_states)
        ext = self._ext_table(batch)
        if labels is None:
            return LMOutput(None, self.input_embedding.projection(hidden, ext), states, 0)
        target = labels[:, 1:]
        where = target != IGNORE_INDEX
        count = int(where.sum())
        if count == 0:
            return LMOutput(hidden.sum() * 0.0, None, states, 0)
        logits = self.input_embedding.projection(hidden[:, :-1][where], ext).float()
        loss = F.cross_entropy(logits, target[where])
        return LMOutput(loss, None, states, count)

    def _next_logits(self, hidden: torch.Tensor, more: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of the last position plus the ``next_answer_id``
        column. ``<unk>`` is banned as VisCPM does for inputs without unknown
        text; extension tokens are not offered (their text is per sample, which
        ``decode_text`` cannot know). Rows with answer slots still to come
        (``more``) see ``</s>``'s logit under ``next_answer_id`` instead."""
        logits = self.input_embedding.projection(hidden[:, -1]).float()
        logits[:, self.tokenizer.unk_id] = float("-inf")
        eos = logits[:, self.eos_token_id].clone()
        more = more.to(logits.device)
        logits[:, self.eos_token_id] = torch.where(more, torch.full_like(eos, float("-inf")), eos)
        column = torch.where(more, eos, torch.full_like(eos, float("-inf")))
        return torch.cat([logits, column[:, None]], dim=1)

    @staticmethod
    def _more_answers(state: DecodeState) -> torch.Tensor:
        following = (state.answer_index + 1).clamp(max=state.answer_segments.shape[1] - 1)
        nxt = state.answer_segments.gather(1, following[:, None]).squeeze(1)
        return (state.answer_index + 1 < state.answer_segments.shape[1]) & (nxt >= 0)

    @torch.no_grad()
    def prefill(self, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, DecodeState]:
        """Run the prompt (a left-padded batch of generation encodings, each ending
        with its answer's ``<s>``)."""
        if not bool(batch["attention_mask"][:, -1].all()):
            raise ValueError("cpm-bee prefill needs left padding: collate(..., padding_side='left')")
        keys = self._fields(batch)
        hidden, caches, _ = self.run(self._input_hidden(inputs_embeds, batch), keys, batch["segment_rel"],
                                     use_cache=True)
        answers = batch.get("answer_segments")
        if answers is None:
            answers = keys.segment[:, -1:]
        answers = answers.to(keys.segment.device)
        state = DecodeState(
            caches=caches, keys=keys, segment_rel=batch["segment_rel"],
            next_position=keys.position[:, -1] + 1, answer_segment=keys.segment[:, -1],
            num_segments=keys.num_segments[:, -1], segment_rel_offset=keys.segment_rel_offset[:, -1],
            answer_segments=answers, answer_index=torch.zeros_like(keys.segment[:, -1]),
        )
        return self._next_logits(hidden, self._more_answers(state)), state

    @torch.no_grad()
    def decode(self, token_ids: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        """One answer token per row: causal (context 0), in the answer segment,
        one position after the previous token. ``next_answer_id`` closes the
        slot: the next slot's ``<s>`` goes in instead, in that slot's segment
        (the official decoder's step after ``</s>``; the ``</s>`` itself is never
        an input)."""
        ids = token_ids.view(-1, 1).to(state.next_position.device)
        switch = ids[:, 0] == self.next_answer_id
        index = state.answer_index + switch.long()
        segment = state.answer_segment
        if bool(switch.any()):
            slot = index.clamp(max=state.answer_segments.shape[1] - 1)
            segment = torch.where(switch, state.answer_segments.gather(1, slot[:, None]).squeeze(1), segment)
            ids = torch.where(switch[:, None], torch.full_like(ids, self.tokenizer.bos_id), ids)
        zeros = torch.zeros_like(ids)
        query = TokenFields(state.next_position[:, None], zeros.bool(), segment[:, None],
                            state.num_segments[:, None], state.segment_rel_offset[:, None], zeros, zeros)
        hidden, caches, _ = self.run(self.embed_tokens(ids).to(self.dtype), query, state.segment_rel,
                                     past=state.caches, past_fields=state.keys, use_cache=True)
        new_state = replace(state, caches=caches, keys=state.keys.cat(query), next_position=state.next_position + 1,
                            answer_segment=segment, answer_index=index)
        return self._next_logits(hidden, self._more_answers(new_state)), new_state

    def reorder_state(self, state: DecodeState, index: torch.Tensor) -> DecodeState:
        return state.index_select(index.to(state.next_position.device))


def _generation_layout(enc: Any) -> tuple[list[int], list[int]]:
    """The official generation input (``CPMBeeGeneration._convert_to_tensors``):
    every answer slot's tokens leave the prompt, which keeps the context tokens
    only; the first slot's ``<s>`` closes it. Returns (indices of the kept
    tokens, the answer slots' segments in slot order)."""
    if not enc.answer_spans:
        raise DataError("for generation the segment dictionary needs an '<ans>' slot")
    for begin, end in enc.answer_spans:
        if end - begin != 1:
            raise DataError("for generation every answer slot under '<ans>' must be empty")
    keep = [i for i, c in enumerate(enc.context) if c]
    keep.append(enc.answer_spans[0][0])
    return keep, [enc.segment[begin] for begin, _ in enc.answer_spans]
