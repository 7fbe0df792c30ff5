"""Structured prompts with several answer slots are generated slot by slot, as
the official ``CPMBeeBeamSearch`` does: the slots leave the prompt, the first
slot's ``<s>`` starts decoding, and ``</s>`` before the last slot opens the
next slot (its ``<s>`` in its own segment) instead of ending the row."""

import torch

from mpm_framework.contracts.prompt import IGNORE_INDEX
from mpm_framework.inference.generation import GenerationConfig, generate

DATA = {"question": "ab", "<ans>": {"first": "", "second": ""}}


def _bias_eos(tiny, value):
    """Make </s> likely enough that the tiny model closes slots quickly."""
    with torch.no_grad():
        tiny.input_embedding.weight[tiny.eos_token_id] *= value


def test_prompt_layout_matches_the_official_generation_input(tiny):
    enc = tiny.encode_dict(DATA, generation=True)
    full = tiny.encode_dict({"question": "ab", "<ans>": {"first": "", "second": ""}})
    # every context token of the full layout, then the first slot's <s>; no second <s>
    context = [t for t, c in zip(full.input_ids, full.extra["context"]) if c]
    assert enc.input_ids == [*context, tiny.tokenizer.bos_id]
    assert enc.extra["answer_segments"][0] == enc.extra["segment"][-1]
    assert len(enc.extra["answer_segments"]) == 2
    assert all(label == IGNORE_INDEX for label in enc.labels)


def _generate(tiny, data, **kw):
    enc = tiny.encode_dict(data, generation=True)
    batch = tiny.collate([enc], padding_side="left")
    embeds = tiny.embed_tokens(batch["input_ids"])
    return generate(tiny, embeds, batch, GenerationConfig(**kw))[0]


def test_two_slots_are_generated_in_turn_and_match_teacher_forcing(tiny):
    """Greedy ids through the core loop equal the argmax of one full forward
    pass over the filled dictionary in the training layout (where the first
    slot's last label is </s> and the second slot follows it)."""
    _bias_eos(tiny, 4.0)
    ids = _generate(tiny, DATA, max_new_tokens=12)
    answers = tiny.split_answers(ids)
    assert len(answers) == 2, ids  # the first slot ended and the second was opened
    assert tiny.next_answer_id == tiny.vocab_size and tiny.next_answer_id not in answers[0] + answers[1]

    filled = {"question": "ab", "<ans>": {"first": "", "second": ""}}
    train = tiny.encode_dict(filled)  # empty leaves: lay the generated tokens in by hand
    tok = tiny.tokenizer
    # rebuild the training layout with the generated tokens inside each slot
    ids_full, ctx, seg = [], [], []
    starts = [i for i, (t, c) in enumerate(zip(train.input_ids, train.extra["context"])) if c == 0 and t == tok.bos_id]
    slot_tokens = {starts[0]: answers[0], starts[1]: answers[1]}
    for i, (t, c, s) in enumerate(zip(train.input_ids, train.extra["context"], train.extra["segment"])):
        if i >= len(train.input_ids) - 1 and c == 0 and t == tok.eos_id:
            continue  # the appended </s> input of the empty last slot
        ids_full.append(t), ctx.append(c), seg.append(s)
        for extra in slot_tokens.get(i, []):
            ids_full.append(extra), ctx.append(0), seg.append(s)
    n = len(ids_full)
    batch = {
        "input_ids": torch.tensor([ids_full]), "input_sub": torch.zeros(1, n, dtype=torch.long),
        "position": torch.arange(n)[None], "context": torch.tensor([ctx]).bool(), "segment": torch.tensor([seg]),
        "num_segments": torch.full((1, n), train.extra["num_segments"][0]),
        "segment_rel_offset": torch.zeros(1, n, dtype=torch.long), "sample_ids": torch.zeros(1, n, dtype=torch.long),
        "span": torch.zeros(1, n, dtype=torch.long), "segment_rel": torch.tensor([train.extra["segment_rel"]]),
        "attention_mask": torch.ones(1, n, dtype=torch.long),
    }
    with torch.no_grad():
        logits = tiny(tiny.embed_tokens(batch["input_ids"]), batch).logits[0].float()
    logits[:, tok.unk_id] = float("-inf")
    expected = []
    for b, answer in zip(starts_in(ids_full, ctx, tok), answers):
        for step in range(len(answer) + 1):
            expected.append(int(logits[b + step].argmax()))
    # the first slot's </s> is the switch to the second; the second's </s> ends the row
    first, second = answers
    assert expected[: len(first) + 1] == [*first, tok.eos_id]
    assert expected[len(first) + 1:] == [*second, tok.eos_id]


def starts_in(ids, ctx, tok):
    return [i for i, (t, c) in enumerate(zip(ids, ctx)) if c == 0 and t == tok.bos_id]


def test_fill_answers_and_beam_search(tiny):
    _bias_eos(tiny, 4.0)
    ids = _generate(tiny, DATA, max_new_tokens=12, num_beams=3, repetition_penalty=1.1)
    out = tiny.fill_answers(DATA, ids)
    assert set(out["<ans>"]) == {"first", "second"} and out["question"] == "ab"
    assert all(isinstance(v, str) for v in out["<ans>"].values())
    single = _generate(tiny, {"question": "ab", "<ans>": ""}, max_new_tokens=6)
    assert tiny.next_answer_id not in single  # one slot: </s> ends the row as before
