"""Prompts in the model's own chat format: labels only on answers (and their
end token), image slots, and generation prompts that are exact prefixes."""

from __future__ import annotations

import pytest

from mpm_framework.contracts.prompt import IGNORE_INDEX, Turn
from mpm_framework.errors import DataError

CONVERSATION = [
    Turn("system", "Answer briefly."),
    Turn("user", "<image>\nWhat is in the image?"),
    Turn("assistant", "a red circle"),
    Turn("user", "左边有什么?"),
    Turn("assistant", "一个红色的圆"),
]


def _formatter(tokenizer, image_token="<image_pad>", template=None):
    from mpm_llm_llama.loading import add_image_token
    from mpm_llm_llama.prompting import PromptFormatter

    add_image_token(tokenizer, image_token)
    return PromptFormatter(tokenizer, image_token, template)


END_OF_TURN = {"toy": "</s>", "chatml": "<|im_end|>", "llama3": "<|eot_id|>", "plain": "</s>"}


def _answers(tokenizer, encoding):
    """The label runs, decoded with special tokens."""
    runs, run = [], []
    for label in encoding.labels:
        if label == IGNORE_INDEX:
            if run:
                runs.append(tokenizer.decode(run))
            run = []
        else:
            run.append(label)
    if run:
        runs.append(tokenizer.decode(run))
    return runs


@pytest.mark.parametrize("kind", ["toy", "chatml", "llama3", "plain"])
def test_labels_cover_exactly_the_answers_and_their_end_token(kind, make_tokenizer):
    tokenizer, end = make_tokenizer(kind), END_OF_TURN[kind]
    enc = _formatter(tokenizer).encode(CONVERSATION, num_image_tokens=4)
    answers = [a.strip() for a in _answers(tokenizer, enc)]
    assert answers == [f"a red circle{end}", f"一个红色的圆{end}"]
    # labels copy the input ids where set (HF convention: aligned, shifted in the loss)
    assert all(lab in (IGNORE_INDEX, tok) for lab, tok in zip(enc.labels, enc.input_ids))


@pytest.mark.parametrize("kind", ["toy", "chatml", "llama3", "plain"])
def test_generation_prompt_is_a_prefix_of_the_training_encoding(kind, make_tokenizer):
    tokenizer = make_tokenizer(kind)
    fmt = _formatter(tokenizer)
    full = fmt.encode(CONVERSATION, num_image_tokens=2)
    for k in (2, 4):  # before each answer
        prompt = fmt.encode(CONVERSATION[:k], num_image_tokens=2, add_generation_prompt=True)
        assert full.input_ids[: len(prompt)] == prompt.input_ids
        # what follows the prompt is exactly the labelled answer
        assert full.labels[len(prompt)] != IGNORE_INDEX
        assert full.labels[len(prompt) - 1] == IGNORE_INDEX
        assert prompt.labels == full.labels[: len(prompt)]


@pytest.mark.parametrize("kind", ["toy", "chatml", "llama3", "plain"])
def test_image_marker_becomes_placeholder_slots(kind, make_tokenizer):
    tokenizer = make_tokenizer(kind)
    fmt = _formatter(tokenizer)
    enc = fmt.encode(CONVERSATION, num_image_tokens=5)
    slots = [i for i, m in enumerate(enc.image_mask) if m]
    assert len(slots) == 5 and slots == list(range(slots[0], slots[0] + 5))
    assert all(enc.input_ids[i] == fmt.image_token_id for i in slots)
    assert all(enc.labels[i] == IGNORE_INDEX for i in slots)
    assert fmt.encode(CONVERSATION, num_image_tokens=0).num_image_slots == 0


@pytest.mark.parametrize("kind", ["chatml", "llama3", "toy", "plain"])
def test_end_of_turn_token_is_found_from_the_template(kind, make_tokenizer):
    tokenizer, end = make_tokenizer(kind), END_OF_TURN[kind]
    assert _formatter(tokenizer).end_of_turn_id() == tokenizer.convert_tokens_to_ids(end)


def test_image_token_is_added_when_missing(make_tokenizer):
    tok = make_tokenizer()
    size = len(tok)
    fmt = _formatter(tok, image_token="<img_slot>")
    assert len(tok) == size + 1 and fmt.image_token_id == size
    enc = fmt.encode([Turn("user", "<image> hi")], num_image_tokens=3)
    assert enc.num_image_slots == 3


def test_a_template_that_rejects_the_conversation_is_a_clear_error(make_tokenizer):
    strict = ("{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
              "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
              "[{{ m['role'] }}] {{ m['content'] }}{% endfor %}")
    fmt = _formatter(make_tokenizer(), template=strict)
    with pytest.raises(DataError, match="roles must alternate"):
        fmt.encode([Turn("system", "x"), Turn("user", "y")])
    with pytest.raises(DataError, match="unknown conversation role 'usr'"):
        fmt.encode([Turn("usr", "y")])


def test_encode_text_labels_every_token_after_the_first(llama_dir):
    from mpm_llm_llama.model import LlamaLLM

    llm = LlamaLLM.from_pretrained(llama_dir)
    enc = llm.encode_text("zwei blaue Quadrate oben")
    assert enc.input_ids[0] == llm.tokenizer.bos_token_id
    assert enc.input_ids[-1] == llm.tokenizer.eos_token_id
    assert enc.labels == [IGNORE_INDEX, *enc.input_ids[1:]]
    assert llm.decode_text(enc.input_ids) == "zwei blaue Quadrate oben"


def test_collate_pads_left_for_generation_and_right_for_training(llama_dir):
    from mpm_llm_llama.model import LlamaLLM

    llm = LlamaLLM.from_pretrained(llama_dir)
    short, long = llm.encode_text("a"), llm.encode_text("a red circle on the left")
    pad = len(long) - len(short)
    right = llm.collate([short, long])
    left = llm.collate([short, long], padding_side="left")
    assert right["input_ids"][0, -pad:].eq(llm.pad_token_id).all()
    assert right["attention_mask"][0].tolist() == [1] * len(short) + [0] * pad
    assert left["attention_mask"][0].tolist() == [0] * pad + [1] * len(short)
    assert left["labels"][0, :pad].eq(IGNORE_INDEX).all()
    assert left["input_ids"][0, pad:].tolist() == short.input_ids
    assert set(right) >= {"input_ids", "attention_mask", "labels", "image_mask"}
