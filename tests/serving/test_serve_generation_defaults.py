"""``mpm serve``: a request that omits a decoding option gets the LLM's
``generation_defaults`` (those the batching loop can honour); explicit values win."""

from __future__ import annotations

from mpm_framework.serving.schemas import parse_chat_request
from mpm_framework.serving.service import FALLBACK_MAX_TOKENS, ServeOptions, Service
from mpm_framework.testing import TinyLLM, tiny_chat_stack

VISCPM_LIKE = {"num_beams": 3, "repetition_penalty": 1.1, "repetition_scope": "generated",
               "max_new_tokens": 12, "length_penalty": 3.0, "beam_temperature": 0.7}


class BeamDefaultsLLM(TinyLLM):
    generation_defaults = VISCPM_LIKE


def _service(defaults_class=None, **options) -> Service:
    stack = tiny_chat_stack()
    if defaults_class is not None:
        stack.llm.__class__ = defaults_class
    return Service(stack, None, ServeOptions(**options))


def _request(**fields):
    return parse_chat_request({"model": "mpm", "messages": [{"role": "user", "content": "hi"}], **fields})


def test_omitted_options_take_the_llm_defaults():
    config = _service(BeamDefaultsLLM).generation_config(_request())
    assert (config.max_new_tokens, config.repetition_penalty, config.repetition_scope) == (12, 1.1, "generated")
    # the loop has no beams: a beam-search model decodes greedily, not by OpenAI's temperature-1 sampling
    assert (config.num_beams, config.do_sample) == (1, False)


def test_explicit_request_values_and_the_server_flag_win():
    service = _service(BeamDefaultsLLM, default_max_tokens=7)
    config = service.generation_config(_request(temperature=0.5, top_p=0.9, seed=3))
    assert (config.do_sample, config.temperature, config.top_p, config.seed) == (True, 0.5, 0.9, 3)
    assert (config.max_new_tokens, config.repetition_penalty) == (7, 1.1)
    prepared = service.prepare_chat(_request(max_tokens=5))
    assert prepared.config.max_new_tokens == 5


def test_a_model_without_defaults_keeps_openais():
    config = _service().generation_config(_request())
    assert (config.do_sample, config.temperature, config.max_new_tokens) == (True, 1.0, FALLBACK_MAX_TOKENS)
    assert config.repetition_penalty == 1.0
