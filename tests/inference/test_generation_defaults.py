"""An LLM's ``generation_defaults`` apply to every option the caller leaves out
(Python chat API, ``mpm compose ... chat``), explicit values win; beam temperature."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch.nn import functional as F

from mpm_framework.cli.main import cli
from mpm_framework.composition import compose
from mpm_framework.inference.generation import (
    GenerationConfig,
    _beam_log_probs,
    apply_repetition_penalty,
    model_generation_config,
)
from mpm_framework.testing import TinyLLM, tiny_chat_stack

chat_module = importlib.import_module("mpm_framework.inference.chat")

DEFAULTS = {"max_new_tokens": 4, "num_beams": 2, "repetition_penalty": 1.3, "repetition_scope": "generated",
            "beam_temperature": 0.7, "length_penalty": 3.0}


class DefaultsLLM(TinyLLM):
    generation_defaults = DEFAULTS


@pytest.fixture
def stack():
    stack = tiny_chat_stack()
    stack.llm.__class__ = DefaultsLLM  # the same model, now declaring decoding defaults
    return stack


@pytest.fixture
def used(monkeypatch):
    """The GenerationConfig each chat call decoded with."""
    configs: list[GenerationConfig] = []
    real = chat_module.iter_generate

    def spy(llm, embeds, batch, config):
        configs.append(config)
        return real(llm, embeds, batch, config)

    monkeypatch.setattr(chat_module, "iter_generate", spy)
    real_sample = chat_module.sample_from  # greedy/sampling turns start from a prefilled or kept state

    def spy_sample(llm, logits, state, seen, config, *rest):
        configs.append(config)
        return real_sample(llm, logits, state, seen, config, *rest)

    monkeypatch.setattr(chat_module, "sample_from", spy_sample)
    return configs


def _image(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))


def test_chat_uses_the_llm_defaults_when_the_caller_sets_nothing(stack, used):
    answer, _ = stack.chat(_image(), "What is this?")
    assert used[-1] == GenerationConfig(**DEFAULTS)
    reference, _ = stack.chat(_image(), "What is this?", generation_config=GenerationConfig(**DEFAULTS))
    assert answer == reference
    pieces = "".join(stack.stream_chat(_image(), "What is this?"))
    assert used[-1] == GenerationConfig(**DEFAULTS) and pieces.strip() == answer
    stack.generate([_image()], ["What is this?"])
    assert used[-1] == GenerationConfig(**DEFAULTS)


def test_explicit_values_win_and_the_rest_stay_the_models(stack, used):
    stack.chat(_image(), "What is this?", num_beams=1, max_new_tokens=6, repetition_scope="all")
    config = used[-1]
    assert (config.num_beams, config.max_new_tokens, config.repetition_scope) == (1, 6, "all")
    assert (config.repetition_penalty, config.length_penalty) == (1.3, 3.0)
    # None means "not set"
    stack.chat(_image(), "What is this?", num_beams=None, temperature=None)
    assert used[-1] == GenerationConfig(**DEFAULTS)


def test_sampling_on_a_beam_model_drops_the_beam_default(stack, used):
    stack.chat(_image(), "What is this?", do_sample=True, seed=0)
    assert used[-1].do_sample and used[-1].num_beams == 1
    with pytest.raises(Exception, match="beam sampling"):
        stack.chat(_image(), "What is this?", do_sample=True, num_beams=2)


def test_a_model_without_defaults_keeps_the_dataclass_defaults():
    llm = tiny_chat_stack().llm
    assert model_generation_config(llm) == GenerationConfig()
    assert model_generation_config(llm, max_new_tokens=None, top_k=5) == GenerationConfig(top_k=5)


def test_beam_scores_follow_hf_or_viscpm_order():
    torch.manual_seed(0)
    logits = torch.randn(2, 11)
    seen = torch.zeros(2, 11, dtype=torch.bool)
    seen[:, 3] = True
    # scope "generated" (CPM-Bee/VisCPM vllm_bee.py): penalty on logits, / temperature, log-softmax
    config = GenerationConfig(num_beams=2, repetition_penalty=1.5, repetition_scope="generated",
                              beam_temperature=0.7)
    expected = F.log_softmax(apply_repetition_penalty(logits, seen, 1.5) / 0.7, dim=-1)
    torch.testing.assert_close(_beam_log_probs(logits, seen, config), expected)
    # scope "all" (HF): log-softmax of the tempered logits, then the penalty
    config = GenerationConfig(num_beams=2, repetition_penalty=1.5, beam_temperature=0.7)
    expected = apply_repetition_penalty(F.log_softmax(logits / 0.7, dim=-1), seen, 1.5)
    torch.testing.assert_close(_beam_log_probs(logits, seen, config), expected)
    # temperature 1 and no penalty: plain log-softmax (unchanged beam search)
    torch.testing.assert_close(_beam_log_probs(logits, None, GenerationConfig(num_beams=2)),
                               F.log_softmax(logits, dim=-1))
    with pytest.raises(Exception, match="beam_temperature"):
        GenerationConfig(beam_temperature=0)


TINY = ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision"]


def test_cli_chat_takes_the_model_defaults_and_flags_win(tiny_components, tmp_path, monkeypatch):
    path = tmp_path / "img.png"
    _image().save(path)
    monkeypatch.setattr(TinyLLM, "generation_defaults", DEFAULTS)
    stack = compose(llm="tiny-llm", vision="tiny-vision")  # seeded: the same weights as the command's
    by_model, _ = stack.chat(str(path), "What is this?", generation_config=GenerationConfig(**DEFAULTS))
    greedy, _ = stack.chat(str(path), "What is this?",
                           generation_config=GenerationConfig(**{**DEFAULTS, "num_beams": 1, "max_new_tokens": 9}))
    runner = CliRunner()
    result = runner.invoke(cli, [*TINY, "chat", "--image", str(path), "What is this?", "--no-stream"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == by_model + "\n"
    result = runner.invoke(cli, [*TINY, "chat", "--image", str(path), "What is this?", "--no-stream",
                                 "--beams", "1", "--max-new-tokens", "9"], catch_exceptions=False)
    assert result.output == greedy + "\n"


def test_cli_help_names_the_model_default():
    result = CliRunner().invoke(cli, [*TINY, "chat", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--repetition-scope [all|generated]" in text
    assert "--beam-temperature" in text
    assert "Default: the model's generation_defaults, else 128" in text
