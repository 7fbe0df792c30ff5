"""Tiny random components and fixtures for MPM's and third parties' tests.

``TinyLLM`` (a byte-level causal transformer) and ``TinyVision`` (a patch
encoder) implement the contracts in pure torch, so stack, trainer and decoding
tests run in a second on a CPU without any plugin installed. Register them with
the ``mpm_plugin`` fixture::

    from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401  (fixtures)

    def test_stack(tiny_components):
        stack = compose(llm="tiny-llm", vision="tiny-vision")
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from .contracts.base import BuildContext
from .contracts.llm import LMOutput, PivotLLM
from .contracts.prompt import IGNORE_INDEX, IMAGE_MARKER, PromptEncoding, Turn
from .contracts.vision import VisionEncoder

PAD, BOS, EOS, IMG, USER, ASSISTANT, SYSTEM = range(256, 263)
ROLE_TOKEN = {"user": USER, "assistant": ASSISTANT, "system": SYSTEM}


def _relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU as a plain function: given F.relu itself, nn.TransformerEncoderLayer takes
    its fused inference path in eval mode, which reads the linear layers' weights
    directly and so skips LoRA adapters injected into them (run.lora)."""
    return F.relu(x)


@dataclass
class TinyLLMConfig:
    name: str = "tiny-llm"
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 512
    seed: int = 0


@dataclass
class TinyVisionConfig:
    name: str = "tiny-vision"
    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 24
    seed: int = 0


class TinyLLM(PivotLLM):
    """A byte-level causal transformer implementing the PivotLLM contract."""

    vocab_size = 263
    eos_token_id = EOS
    pad_token_id = PAD

    def __init__(self, config: TinyLLMConfig) -> None:
        super().__init__()
        torch.manual_seed(config.seed)
        self.hidden_size, self.num_layers = config.hidden_size, config.num_layers
        self.tok = nn.Embedding(self.vocab_size, config.hidden_size)
        self.pos = nn.Embedding(config.max_positions, config.hidden_size)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                config.hidden_size, config.num_heads, 4 * config.hidden_size,
                dropout=0.0, batch_first=True, norm_first=True, activation=_relu,
            )
            for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(config.hidden_size)
        self.head = nn.Linear(config.hidden_size, self.vocab_size, bias=False)

    @classmethod
    def from_config(cls, config: TinyLLMConfig, context: BuildContext) -> TinyLLM:
        return cls(config)

    def trainable_groups(self) -> dict[str, list[str]]:
        return {"embeddings": ["tok.", "pos."], "layers": ["layers."], "head": ["head.", "norm."]}

    # -- text ------------------------------------------------------------------
    @staticmethod
    def _bytes(text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def format_prompt(self, turns: list[Turn], num_image_tokens: int = 0, add_generation_prompt: bool = False):
        ids, labels = [BOS], [IGNORE_INDEX]
        for turn in turns:
            ids.append(ROLE_TOKEN[turn.role])
            labels.append(IGNORE_INDEX)
            pieces = turn.content.split(IMAGE_MARKER)
            content: list[int] = []
            for i, piece in enumerate(pieces):
                if i:
                    content += [IMG] * num_image_tokens
                content += self._bytes(piece)
            if turn.role == "assistant":
                content.append(EOS)
                labels += content
            else:
                labels += [IGNORE_INDEX] * len(content)
            ids += content
        if add_generation_prompt:
            ids.append(ASSISTANT)
            labels.append(IGNORE_INDEX)
        return PromptEncoding(ids, labels, [t == IMG for t in ids])

    def encode_text(self, text: str) -> PromptEncoding:
        ids = [BOS, *self._bytes(text), EOS]
        return PromptEncoding(ids, [IGNORE_INDEX, *ids[1:]], [False] * len(ids))

    def decode_text(self, token_ids: list[int]) -> str:
        return bytes(t for t in token_ids if t < 256).decode("utf-8", errors="replace")

    def collate(self, encodings: list[PromptEncoding], padding_side: str = "right") -> dict[str, torch.Tensor]:
        width = max(len(e) for e in encodings)
        out = {k: [] for k in ("input_ids", "labels", "image_mask", "attention_mask")}
        for e in encodings:
            pad = width - len(e)
            rows = {
                "input_ids": (e.input_ids, PAD),
                "labels": (e.labels, IGNORE_INDEX),
                "image_mask": ([int(m) for m in e.image_mask], 0),
                "attention_mask": ([1] * len(e), 0),
            }
            for key, (row, fill) in rows.items():
                out[key].append([fill] * pad + row if padding_side == "left" else row + [fill] * pad)
        batch = {k: torch.tensor(v) for k, v in out.items()}
        batch["image_mask"] = batch["image_mask"].bool()
        return batch

    # -- compute ---------------------------------------------------------------
    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.tok(input_ids)

    def _run(self, embeds: torch.Tensor, attention_mask: torch.Tensor, output_hidden_states: bool = False):
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        x = embeds + self.pos(positions)
        T = x.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1)
        mask = causal.unsqueeze(0) | ~attention_mask.bool().unsqueeze(1)
        mask = mask & ~torch.eye(T, dtype=torch.bool, device=x.device)  # padded rows see themselves
        mask = mask.repeat_interleave(self.layers[0].self_attn.num_heads, 0)
        hidden = [x]
        for layer in self.layers:
            x = layer(x, src_mask=mask)
            hidden.append(x)
        return self.norm(x), tuple(hidden)

    def forward(self, inputs_embeds, batch, labels=None, output_hidden_states=False) -> LMOutput:
        x, hidden = self._run(inputs_embeds, batch["attention_mask"], output_hidden_states)
        logits = self.head(x)
        loss, n = None, 0
        if labels is not None:
            shifted = labels[:, 1:]
            n = int((shifted != IGNORE_INDEX).sum())
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), shifted.flatten(), ignore_index=IGNORE_INDEX)
        return LMOutput(loss, logits, hidden if output_hidden_states else None, n)

    def prefill(self, inputs_embeds, batch):
        state = (inputs_embeds, batch["attention_mask"])
        x, _ = self._run(*state)
        return self.head(x[:, -1]), state

    def decode(self, token_ids, state):
        embeds, mask = state
        embeds = torch.cat([embeds, self.tok(token_ids)[:, None]], 1)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
        x, _ = self._run(embeds, mask)
        return self.head(x[:, -1]), (embeds, mask)

    def reorder_state(self, state, index):
        return tuple(s.index_select(0, index) for s in state)


class TinyVision(VisionEncoder):
    image_mean = (0.5, 0.5, 0.5)
    image_std = (0.5, 0.5, 0.5)

    def __init__(self, config: TinyVisionConfig) -> None:
        super().__init__()
        torch.manual_seed(config.seed)
        self.image_size, self.hidden_size = config.image_size, config.hidden_size
        self.num_output_tokens = (config.image_size // config.patch_size) ** 2
        self.patch = nn.Conv2d(3, config.hidden_size, config.patch_size, config.patch_size)
        self.pos = nn.Parameter(torch.randn(self.num_output_tokens, config.hidden_size) * 0.02)
        self.block = nn.TransformerEncoderLayer(config.hidden_size, 4, 2 * config.hidden_size, dropout=0.0,
                                                batch_first=True, norm_first=True, activation=_relu)

    @classmethod
    def from_config(cls, config: TinyVisionConfig, context: BuildContext) -> TinyVision:
        return cls(config)

    def trainable_groups(self) -> dict[str, list[str]]:
        return {"patch_embed": ["patch."], "encoder": ["pos", "block."]}

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch(pixel_values).flatten(2).transpose(1, 2) + self.pos
        return self.block(x)


# -- plugin + fixtures ---------------------------------------------------------

def _tiny_plugin():
    from . import testing_plugin

    return testing_plugin


@pytest.fixture(autouse=True)
def one_thread():
    """Torch on one thread for each test that sees this fixture (import it into a
    ``conftest.py`` and it applies to every test there): tiny models run fastest
    and deterministically on one thread, and a shared machine stays responsive."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def mpm_plugin():
    """Register plugins in-process for one test: ``mpm_plugin(module_or_object)``."""
    from . import plugins

    names: list[str] = []

    def register(plugin: Any, name: str | None = None) -> str:
        names.append(plugins.register_plugin(plugin, name=name))
        return names[-1]

    yield register
    for name in names:
        plugins.unregister_plugin(name)


@pytest.fixture
def tiny_components(mpm_plugin):
    """``tiny-llm`` and ``tiny-vision`` registered for the duration of a test."""
    mpm_plugin(_tiny_plugin(), name="mpm-tiny-components")
    yield


def tiny_chat_stack(**overrides: Any):
    """A ChatStack of tiny components without touching the global registry."""
    from .connectors.modules import MLPConnector
    from .lang_en.pack import EnglishPack
    from .stacks.chat import ChatStack

    llm = TinyLLM(TinyLLMConfig(**{k: v for k, v in overrides.items() if k in TinyLLMConfig.__annotations__}))
    vision = TinyVision(TinyVisionConfig())
    connector = MLPConnector("mlp2x_gelu", vision.hidden_size, llm.hidden_size)
    return ChatStack(llm, vision, connector, {"en": EnglishPack()})


def check_language_pack(pack: Any, *, require_translated: bool = True, scenes: int = 300,
                        candidates: Any = None) -> Any:
    """The shared conformance check of language packs, for a pack's own tests.

    Runs :func:`mpm_framework.langkit.check.check_pack` (what ``mpm lang check``
    runs: contract, phrases translated, calibration set in the language,
    offline tokenisation, toy-grammar round trips on ``scenes`` scenes when the
    pack has a grammar) and fails the test with the readable report if any
    check fails; returns the report otherwise. ``require_translated=False``
    turns untranslated entries into warnings (a fresh ``mpm lang new`` scaffold)."""
    from .langkit.check import check_pack

    report = check_pack(pack, candidates=candidates, scenes=scenes, require_translated=require_translated)
    if not report.ok:
        pytest.fail(report.render(), pytrace=False)
    return report


__all__ = [n for n in dir(sys.modules[__name__]) if n.startswith(("Tiny", "tiny", "mpm_plugin", "check_"))]
