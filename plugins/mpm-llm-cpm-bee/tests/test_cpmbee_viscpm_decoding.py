"""VisCPM's decoding: the repetition penalty looks at generated tokens only
(``repetition_scope: generated``, CPM-Bee's ``apply_repetition_penalty`` with
``start_idx`` at the prompt's end), beam 3, 512 tokens."""

import torch

from mpm_framework.inference.generation import (
    GenerationConfig,
    apply_repetition_penalty,
    generate,
    initial_seen,
)


def _prompt(tiny, question):
    enc = tiny.encode_dict({"question": question, "<ans>": ""}, generation=True)
    batch = tiny.collate([enc], padding_side="left")
    return tiny.embed_tokens(batch["input_ids"]), batch


def test_generated_scope_penalises_only_new_tokens(tiny):
    embeds, batch = _prompt(tiny, "abcab")
    cfg_all = GenerationConfig(repetition_penalty=1.5)
    cfg_gen = GenerationConfig(repetition_penalty=1.5, repetition_scope="generated")
    width = tiny.vocab_size + 1
    assert initial_seen(batch, width, torch.device("cpu"), cfg_all).any()
    assert not initial_seen(batch, width, torch.device("cpu"), cfg_gen).any()
    assert initial_seen(batch, width, torch.device("cpu"), GenerationConfig()) is None

    penalty = 50.0  # large enough to change the greedy path
    ids = generate(tiny, embeds, batch, GenerationConfig(max_new_tokens=6, repetition_penalty=penalty,
                                                         repetition_scope="generated"))[0]
    # by hand: greedy with the penalty on the tokens generated so far
    manual, seen = [], torch.zeros(1, width, dtype=torch.bool)
    with torch.no_grad():
        logits, state = tiny.prefill(embeds, batch)
        for _ in range(6):
            token = int(apply_repetition_penalty(logits.float(), seen, penalty).argmax(-1))
            if token == tiny.eos_token_id:
                break
            manual.append(token)
            seen[0, token] = True
            logits, state = tiny.decode(torch.tensor([token]), state)
    assert ids == manual


def test_bad_scope_is_a_clear_error():
    import pytest

    from mpm_framework.errors import ConfigError

    with pytest.raises(ConfigError, match="repetition_scope"):
        GenerationConfig(repetition_scope="prompt")


def test_viscpm_defaults(tiny):
    d = tiny.generation_defaults
    cfg = GenerationConfig.from_kwargs(**d)
    assert (cfg.num_beams, cfg.repetition_penalty, cfg.repetition_scope, cfg.max_new_tokens, cfg.length_penalty) == (
        3, 1.1, "generated", 512, 3.0)


def test_paint_prompts_are_viscpm_caption_dicts(tiny):
    enc = tiny.encode_paint_prompt("a red <circle>")
    ref = tiny.encode_dict({"caption": "a red <<circle>", "objects": ""})
    assert enc.input_ids == ref.input_ids and all(enc.extra["context"])  # all context, as VisCPM-Paint

    class Stack:  # PaintStack.encode_prompts takes the LLM's own paint encoding
        llm = tiny

    from mpm_framework.stacks.paint import PaintStack

    states, mask = PaintStack.encode_prompts(Stack(), ["a red <circle>"])
    assert mask.shape[1] == len(enc.input_ids) and states.shape[-1] == tiny.hidden_size
