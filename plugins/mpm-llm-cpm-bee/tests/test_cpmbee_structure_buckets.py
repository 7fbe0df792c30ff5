"""The dict -> tensors conversion and the position-bias buckets, against hand-computed cases."""

import math

import pytest
import torch
from mpm_llm_cpm_bee.model import BucketPositionBias, TokenFields, attention_layout, position_bucket
from mpm_llm_cpm_bee.structured import encode_structured, relation_bucket

from mpm_framework.contracts.prompt import IGNORE_INDEX, Turn
from mpm_framework.errors import DataError


def test_relation_bucket_formula():
    assert relation_bucket(0, 0, 8) == 0
    assert relation_bucket(1, 0, 8) == 9
    assert relation_bucket(0, 1, 8) == 2
    assert relation_bucket(3, 2, 16) == 3 * 16 + 2 + 1


def test_segments_context_and_relations(tokenizer):
    data = {"a": "x", "b": {"c": "y"}, "<ans>": "ok"}
    enc = encode_structured(tokenizer, data, max_depth=8)
    # Segments in depth-first order: root, a, x, b, c, y, <ans>, ok.
    assert enc.num_segments == 8
    s, e = tokenizer.bos_id, tokenizer.eos_id
    enc_tok = tokenizer.encoder
    expected = [s, enc_tok["<root>"], e, s, enc_tok["a"], e, s, enc_tok["x"], e, s, enc_tok["b"], e,
                s, enc_tok["c"], e, s, enc_tok["y"], e, s, enc_tok["<ans>"], e, s, enc_tok["o"], enc_tok["k"]]
    assert enc.ids == expected
    assert enc.segment == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3 + [6] * 3 + [7] * 3
    # Only the answer leaf is causal and has no </s>.
    assert enc.context == [1] * 21 + [0] * 3
    assert enc.answer_spans == [(21, 24)]
    n = enc.num_segments

    def rel(q, k):
        return enc.segment_rel[q * n + k]

    # rel(q, k) = bucket(levels from q up to the common ancestor, levels down to k).
    assert rel(2, 1) == 1 * 8 + 0 + 1  # x -> its key a
    assert rel(1, 2) == 0 * 8 + 1 + 1  # a -> its value x
    assert rel(5, 2) == 3 * 8 + 2 + 1  # y (depth 3) -> x (depth 2), ancestor = root
    assert rel(2, 5) == 2 * 8 + 3 + 1
    assert rel(3, 1) == 1 * 8 + 1 + 1  # siblings b, a
    assert rel(0, 5) == 0 * 8 + 3 + 1  # root -> y
    assert rel(7, 6) == 9 and rel(7, 0) == 2 * 8 + 0 + 1
    assert all(rel(i, i) == 0 for i in range(n))


def test_depth_is_capped(tokenizer):
    deep = {"k": {"k": {"k": {"k": "v"}}}}
    enc = encode_structured(tokenizer, deep, max_depth=2)
    n = enc.num_segments  # root, k, k, k, k, v (depth 5)
    assert enc.segment_rel[(n - 1) * n + 0] == relation_bucket(1, 0, 2)  # 5 levels up, capped at 1


def test_image_slots(tokenizer):
    enc = encode_structured(tokenizer, {"image": "<unk>" * 3, "question": "q", "<ans>": ""})
    # root (3 tokens) + key "image" spelled i-m-a-g-e (7) + the value's <s>.
    assert enc.image_spans == [(11, 14)]
    assert enc.ids[11:14] == [tokenizer.unk_id] * 3
    assert enc.ids[10] == tokenizer.bos_id and enc.ids[14] == tokenizer.eos_id


def test_position_bucket_hand_computed():
    # key_pos - query_pos -> bucket (256 buckets, max distance 2048): keys after
    # the query use the upper 128; exact below 64; log-spaced up to 2048.
    cases = {0: 0, -1: 1, 1: 129, -63: 63, 63: 191, -64: 64, -128: 76, 100: 200, -1000: 114,
             -2048: 127, -5000: 127, 5000: 255}
    for relative, bucket in cases.items():
        got = int(position_bucket(torch.tensor([relative]), 256, 2048))
        assert got == bucket, (relative, got, bucket)
    # The log formula itself, for one of them: 64 + floor(log(128 / 64) / log(2048 / 64) * 64).
    assert 64 + math.floor(math.log(2) / math.log(32) * 64) == 76


def test_bias_rows_in_segment_across_segment_and_across_samples():
    # Two tokens per segment: seg 0 (tokens 0,1), seg 1 (2,3); token 4 is another sample.
    seg_rel = torch.tensor([[0, 2, 9, 0]])  # rel(0,1)=2, rel(1,0)=9
    f = TokenFields(
        position=torch.tensor([[0, 1, 2, 3, 4]]), context=torch.tensor([[1, 1, 1, 0, 1]]).bool(),
        segment=torch.tensor([[0, 0, 1, 1, 0]]), num_segments=torch.tensor([[2, 2, 2, 2, 2]]),
        segment_rel_offset=torch.zeros(1, 5, dtype=torch.long), sample_ids=torch.tensor([[0, 0, 0, 0, 1]]),
        span=torch.zeros(1, 5, dtype=torch.long),
    )
    mask, relation = attention_layout(f, f, seg_rel)
    rows = BucketPositionBias(4, 256, 256, 2048).buckets(f.position, f.position, relation)[0]
    assert rows[0, 1] == 129 and rows[1, 0] == 1  # in-segment token distance
    assert rows[2, 0] == 256 + 9 - 1 and rows[0, 2] == 256 + 2 - 1  # segment relation
    assert rows[0, 4] == 256 and rows[4, 0] == 256  # another sample: bucket 1
    m = mask[0]
    assert m[0, 1] and m[1, 0] and m[0, 2]  # context tokens see each other both ways
    assert not m[0, 3] and not m[2, 3]  # nobody context sees the answer token 3 ...
    assert m[3, 3] and m[3, 0] and m[3, 2]  # ... which sees context and itself
    assert m[4, 0] is not None and not bool(m[4, 0]) and bool(m[0, 4])  # sample 1 sees only itself; main sees it


def test_training_labels_follow_the_official_targets(tiny):
    tok = tiny.tokenizer
    enc = tiny.encode_dict({"question": "q", "<ans>": "ok"})
    ids, labels = enc.input_ids, enc.labels
    begin = ids.index(tok.encoder["o"]) - 1  # the answer's <s>
    assert ids[begin] == tok.bos_id and enc.extra["context"][begin] == 0
    # Labels are aligned with input_ids: position t holds what logits[t - 1] must predict.
    assert labels[:begin + 1] == [IGNORE_INDEX] * (begin + 1)
    assert labels[begin + 1:] == [tok.encoder["o"], tok.encoder["k"], tok.eos_id]
    # The row ended inside the answer, so one </s> input was appended.
    assert ids[-1] == tok.eos_id and len(ids) == begin + 4

    nested = tiny.encode_dict({"<ans>": {"a": "x", "b": "y"}})
    # Answer leaves end with </s> labels where the next segment's <s> follows.
    x_pos = nested.input_ids.index(tok.encoder["x"])
    assert nested.labels[x_pos] == tok.encoder["x"] and nested.labels[x_pos + 1] == tok.eos_id
    assert nested.input_ids[x_pos + 1] == tok.bos_id


def test_generation_prompt_ends_with_the_answer_start(tiny):
    turns = [Turn("user", "<image>\nWhat is it?")]
    enc = tiny.format_prompt(turns, num_image_tokens=4, add_generation_prompt=True)
    assert enc.input_ids[-1] == tiny.tokenizer.bos_id and enc.extra["context"][-1] == 0
    assert sum(enc.extra["context"]) == len(enc) - 1
    assert all(label == IGNORE_INDEX for label in enc.labels)
    assert enc.num_image_slots == 4
    # As the official decoder: answer slots leave the prompt wherever they are.
    later = tiny.encode_dict({"<ans>": "", "after": "x"}, generation=True)
    assert later.input_ids[-1] == tiny.tokenizer.bos_id and later.extra["context"][-1] == 0
    assert sum(later.extra["context"]) == len(later) - 1
    with pytest.raises(DataError, match="must be empty"):
        tiny.encode_dict({"<ans>": "filled"}, generation=True)


def test_conversation_dict_is_viscpm_format(tiny):
    turns = [Turn("user", "<image>\nWhat color?"), Turn("assistant", "Red."),
             Turn("user", "And the shape?"), Turn("assistant", "A <circle>.")]
    data = tiny.conversation_dict(turns, num_image_tokens=2)
    assert data == {"image": "<unk><unk>", "context": "User: What color?\nAI: Red.\n",
                    "question": "And the shape?", "<ans>": "A <<circle>."}
    gen = tiny.conversation_dict(turns[:3], num_image_tokens=2, add_generation_prompt=True)
    assert gen["question"] == "And the shape?" and gen["<ans>"] == ""
    with pytest.raises(DataError, match="unknown role"):
        tiny.conversation_dict([Turn("bot", "x")])
