"""A chat keeps its conversation's decode state: a new turn feeds only its own
tokens through the LLM, and answers equal those of encoding the whole
conversation again (greedy), on the LLaMA plugin and on the TinyLLM stack.

The tiny models' LM heads answer in lowercase letters only (the other rows are
zeroed): random bytes would decode to text that tokenises differently, and the
cache is then (correctly) not reusable, so nothing would exercise it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from mpm_framework.contracts.prompt import Turn
from mpm_framework.inference.chat import DecodeCache, History, reusable_prefix
from mpm_framework.inference.generation import ContextLengthError
from mpm_framework.testing import TinyLLM, tiny_chat_stack

QUESTIONS = ("What is this?", "And the colour?", "Is it big?", "Where is it?")
NEW = 6


def _letters_only(llm, letter_ids: list[int]) -> None:
    """Zero the LM-head rows of every token but ``letter_ids`` and the end tokens
    (a new, untied parameter: input embeddings stay as they were)."""
    head = llm.hf.get_output_embeddings() if hasattr(llm, "hf") else llm.head
    keep = torch.zeros(head.weight.shape[0], dtype=torch.bool)
    keep[letter_ids] = True
    keep[[llm.eos_token_id, *llm.stop_token_ids]] = True
    weight = head.weight.detach().clone()
    weight[~keep] = 0
    head.weight = torch.nn.Parameter(weight)


class CountExtends:
    """Records the token counts ``extend_state`` is fed (instance attribute, removed after)."""

    def __init__(self, llm) -> None:
        self.llm, self.fed = llm, []
        self.original = llm.extend_state

    def __enter__(self):
        def counted(token_ids, state):
            self.fed.append(token_ids.shape[1])
            return self.original(token_ids, state)

        self.llm.extend_state = counted
        return self

    def __exit__(self, *exc):
        del self.llm.extend_state


def _image(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8))


def _fresh(history: History) -> History:
    """The same conversation without its decode state (re-encoded from scratch)."""
    return History(list(history.turns), history.image_features, history.pixel_values)


def _conversation(stack, questions=QUESTIONS, **options):
    """Cached answers turn by turn; each checked against a re-encoding of the same history."""
    history, answers = None, []
    for i, question in enumerate(questions):
        image = _image() if i == 0 else None
        answer, new = stack.chat(image, question, history=history, max_new_tokens=NEW, **options)
        if history is not None:
            again, _ = stack.chat(None, question, history=_fresh(history), max_new_tokens=NEW, **options)
            assert answer == again, f"turn {i + 1}: cached {answer!r} != re-encoded {again!r}"
        answers.append(answer)
        history = new
    return answers, history


@pytest.fixture(scope="module")
def llama_stack():
    pytest.importorskip("mpm_llm_llama")
    from mpm_framework import compose

    torch.manual_seed(0)
    stack = compose(llm="llama", vision="clip",
                    overrides=["model.llm.tiny.hidden_size=32", "model.llm.tiny.intermediate_size=64"])
    tok = stack.llm.tokenizer
    _letters_only(stack.llm, [tok.convert_tokens_to_ids(c) for c in "abcdefghijklmnopqrstuvwxyz"])
    return stack.eval()


@pytest.fixture(scope="module")
def tiny_stack():
    stack = tiny_chat_stack()
    _letters_only(stack.llm, list(range(ord("a"), ord("z") + 1)))
    return stack.eval()


class ExtendingTinyLLM(TinyLLM):
    """TinyLLM whose decode state (embeddings + mask, run again each step) can
    take several tokens at once: the optional ``extend_state`` of the contract."""

    def extend_state(self, token_ids, state):
        embeds, mask = state
        embeds = torch.cat([embeds, self.tok(token_ids)], 1)
        mask = torch.cat([mask, mask.new_ones(token_ids.shape)], 1)
        x, _ = self._run(embeds, mask)
        return self.head(x[:, -1]), (embeds, mask)


def test_llama_turns_feed_only_the_new_tokens_and_answer_as_re_encoding(llama_stack):
    with CountExtends(llama_stack.llm) as extends:
        answers, history = _conversation(llama_stack)
    assert all(answers)
    assert len(extends.fed) == len(QUESTIONS) - 1  # every later turn extended the state
    full = len(llama_stack.encode_conversation(history.turns[:-1], add_generation_prompt=True))
    assert max(extends.fed) < 20 < full  # the new question (+ the last answer token), not the conversation


def test_the_answer_enters_the_cache(llama_stack):
    answer, history = llama_stack.chat(_image(), QUESTIONS[0], max_new_tokens=NEW)
    cache = history.decode_cache
    prompt = llama_stack.encode_conversation(history.turns[:-1], add_generation_prompt=True)
    generated = list(cache.token_ids[len(prompt):])
    assert list(cache.token_ids[:len(prompt)]) == prompt.input_ids
    assert llama_stack.llm.decode_text(generated) == answer and 1 <= len(generated) <= NEW
    # the state has seen all but the last generated token, which the next turn feeds
    assert cache.fed == len(cache.token_ids) - 1 == cache.state.attention_mask.shape[1]
    # history + answer + next question tokenise as the full conversation: the cache extends to it
    turns = [*history.turns, Turn("user", QUESTIONS[1])]
    encoding = llama_stack.encode_conversation(turns, add_generation_prompt=True)
    assert encoding.input_ids[:len(cache.token_ids)] == list(cache.token_ids)
    assert reusable_prefix(cache, encoding, history.image_features) == encoding.input_ids[cache.fed:]


def test_a_branch_does_not_corrupt_the_kept_state(llama_stack):
    """Two questions asked from one history, then each branch continued: the
    in-place cache writes of one branch never reach the other."""
    _, first = llama_stack.chat(_image(), QUESTIONS[0], max_new_tokens=NEW)
    with CountExtends(llama_stack.llm) as extends:
        a, after_a = llama_stack.chat(None, QUESTIONS[1], history=first, max_new_tokens=NEW)
        b, after_b = llama_stack.chat(None, QUESTIONS[2], history=first, max_new_tokens=NEW)
        a2, _ = llama_stack.chat(None, QUESTIONS[3], history=after_a, max_new_tokens=NEW)
        b2, _ = llama_stack.chat(None, QUESTIONS[3], history=after_b, max_new_tokens=NEW)
        a_again, _ = llama_stack.chat(None, QUESTIONS[1], history=first, max_new_tokens=NEW)
    assert len(extends.fed) == 5
    for history, question, cached in ((first, QUESTIONS[1], a), (first, QUESTIONS[2], b),
                                      (after_a, QUESTIONS[3], a2), (after_b, QUESTIONS[3], b2),
                                      (first, QUESTIONS[1], a_again)):
        fresh, _ = llama_stack.chat(None, question, history=_fresh(history), max_new_tokens=NEW)
        assert cached == fresh


def test_streamed_turns_use_and_keep_the_cache(llama_stack):
    _, history = llama_stack.chat(_image(), QUESTIONS[0], max_new_tokens=NEW)
    with CountExtends(llama_stack.llm) as extends:
        stream = llama_stack.stream_chat(None, QUESTIONS[1], history=history, max_new_tokens=NEW)
        pieces = "".join(stream)
    fresh, _ = llama_stack.chat(None, QUESTIONS[1], history=_fresh(history), max_new_tokens=NEW)
    assert extends.fed and stream.answer == fresh and pieces.strip() == fresh
    assert stream.history.decode_cache is not None


def test_an_edited_history_is_encoded_again(llama_stack):
    _, history = llama_stack.chat(_image(), QUESTIONS[0], max_new_tokens=NEW)
    history.turns[-1] = Turn("assistant", "something else entirely")
    with CountExtends(llama_stack.llm) as extends:
        answer, _ = llama_stack.chat(None, QUESTIONS[1], history=history, max_new_tokens=NEW)
    assert extends.fed == []
    assert answer == llama_stack.chat(None, QUESTIONS[1], history=_fresh(history), max_new_tokens=NEW)[0]


def test_a_template_rewriting_earlier_turns_is_encoded_again(llama_stack, monkeypatch):
    """The prompt of turn N+1 must start with the tokens the state has seen; a
    chat format that renders earlier turns differently (here: a turn count up
    front) fails that check, and the turn is encoded from scratch."""
    formatter = llama_stack.llm.formatter
    monkeypatch.setattr(formatter, "template", "{{ bos_token }}{{ messages|length }}" + formatter.template[15:])
    assert formatter.template.startswith("{{ bos_token }}{{ messages|length }}{% for")
    _, history = llama_stack.chat(_image(), QUESTIONS[0], max_new_tokens=NEW)
    encoding = llama_stack.encode_conversation([*history.turns, Turn("user", QUESTIONS[1])],
                                               add_generation_prompt=True)
    assert reusable_prefix(history.decode_cache, encoding, history.image_features) is None
    with CountExtends(llama_stack.llm) as extends:
        answer, _ = llama_stack.chat(None, QUESTIONS[1], history=history, max_new_tokens=NEW)
    assert extends.fed == []
    assert answer == llama_stack.chat(None, QUESTIONS[1], history=_fresh(history), max_new_tokens=NEW)[0]


def test_reusable_prefix_checks_tokens_images_and_features():
    features = torch.zeros(1, 2, 4)
    cache = DecodeCache(None, (1, 5, 9, 9, 7, 2), (False, False, True, True, False, False), 5, features)
    from mpm_framework.contracts.prompt import PromptEncoding

    def enc(ids, image=()):
        return PromptEncoding(list(ids), list(ids), [i in image for i in range(len(ids))])

    assert reusable_prefix(cache, enc([1, 5, 9, 9, 7, 2, 5, 8, 6], {2, 3}), features) == [2, 5, 8, 6]
    assert reusable_prefix(cache, enc([1, 5, 9, 9, 7, 3, 5, 8, 6], {2, 3}), features) is None  # answer differs
    assert reusable_prefix(cache, enc([1, 5, 9, 9, 7, 2, 5, 8, 6], {2, 3}), features.clone()) is None
    assert reusable_prefix(cache, enc([1, 5, 9, 9, 7, 2, 5, 8, 6], {2, 3, 7}), features) is None  # new image slots
    assert reusable_prefix(cache, enc([1, 5, 9, 9, 7], {2, 3}), features) is None  # shorter than the cache
    assert reusable_prefix(None, enc([1, 5]), None) is None


def test_too_long_turns_still_raise_or_truncate_with_a_cache():
    pytest.importorskip("mpm_llm_llama")
    from mpm_framework import compose

    window = 64
    stack = compose(llm="llama", vision="clip", overrides=[
        "model.llm.tiny.hidden_size=32", "model.llm.tiny.intermediate_size=64",
        f"model.llm.tiny.max_position_embeddings={window}"]).eval()
    _letters_only(stack.llm, [stack.llm.tokenizer.convert_tokens_to_ids(c) for c in "abcdefghijklmnopqrstuvwxyz"])
    _, history = stack.chat(_image(), "What is this?", max_new_tokens=4)
    assert history.decode_cache is not None
    question = "tell me more please " * 2
    with pytest.raises(ContextLengthError):
        stack.chat(None, question, history=history, max_new_tokens=4)
    with CountExtends(stack.llm) as extends, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer, _ = stack.chat(None, question, history=history, max_new_tokens=4, truncate_history=True)
    assert any("dropped its oldest turns" in str(w.message) for w in caught)
    assert extends.fed == []  # the oldest turns are gone: the cached prefix no longer matches
    with pytest.warns(UserWarning, match="dropped its oldest turns"):
        again, _ = stack.chat(None, question, history=_fresh(history), max_new_tokens=4, truncate_history=True)
    assert answer == again


def test_beam_search_keeps_no_state_and_the_next_turn_re_encodes(llama_stack):
    _, history = llama_stack.chat(_image(), QUESTIONS[0], max_new_tokens=NEW, num_beams=2)
    assert history.decode_cache is None
    answer, later = llama_stack.chat(None, QUESTIONS[1], history=history, max_new_tokens=NEW)
    assert later.decode_cache is not None
    assert answer == llama_stack.chat(None, QUESTIONS[1], history=_fresh(history), max_new_tokens=NEW)[0]


def test_tiny_llm_without_extend_state_re_encodes_each_turn(tiny_stack):
    assert type(tiny_stack.llm).extend_state is not ExtendingTinyLLM.extend_state
    answers, history = _conversation(tiny_stack, QUESTIONS[:3])
    assert all(answers) and history.decode_cache is not None


def test_tiny_llm_with_extend_state_uses_the_cache(tiny_stack, monkeypatch):
    monkeypatch.setattr(tiny_stack.llm, "__class__", ExtendingTinyLLM)
    with CountExtends(tiny_stack.llm) as extends:
        answers, _ = _conversation(tiny_stack, QUESTIONS[:3])
    assert all(answers) and len(extends.fed) == 2
    # the byte-level format: the last answer token (or its end token) and the new question
    assert extends.fed[0] <= len(QUESTIONS[1].encode()) + 3
