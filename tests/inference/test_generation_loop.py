"""The decoding loop against exhaustive search and hand-checked behaviour.

``PrefixLM`` is a PivotLLM whose next-token logits are a fixed pseudo-random
function of the whole prefix over a 3-token vocabulary ("a", "b", end). That
makes every sequence's probability computable by enumeration, so beam search
can be checked against brute force, and stop strings/end tokens are easy to
provoke. It is a real implementation of the contract (prefill, decode,
reorder_state), not a mock of the loop.
"""

from __future__ import annotations

import itertools
import math
import zlib

import pytest
import torch
from torch import nn

from mpm_framework.contracts.llm import PivotLLM
from mpm_framework.contracts.prompt import IGNORE_INDEX, PromptEncoding
from mpm_framework.errors import ConfigError
from mpm_framework.inference.generation import (
    GenerationConfig,
    _beam_search,
    apply_repetition_penalty,
    decode_answer,
    generate,
    warp_for_sampling,
)

A, B, END = 0, 1, 2
TEXT = {A: "a", B: "b"}


class PrefixLM(PivotLLM):
    vocab_size = 3
    eos_token_id = END
    pad_token_id = END
    hidden_size = 1
    num_layers = 0

    def __init__(self, seed: int = 0, scale: float = 1.5, end_bias: float = 0.0) -> None:
        super().__init__()
        self.seed, self.scale, self.end_bias = seed, scale, end_bias
        self.anchor = nn.Parameter(torch.zeros(1))
        self.decode_calls = 0

    def next_logits(self, prefix: tuple[int, ...]) -> torch.Tensor:
        g = torch.Generator().manual_seed(zlib.crc32(repr((self.seed, prefix)).encode()))
        logits = torch.randn(3, generator=g) * self.scale
        logits[END] += self.end_bias
        return logits

    def log_prob(self, prompt: tuple[int, ...], continuation: tuple[int, ...]) -> float:
        total = 0.0
        for i, token in enumerate(continuation):
            total += float(torch.log_softmax(self.next_logits(prompt + continuation[:i]), -1)[token])
        return total

    # text
    def format_prompt(self, turns, num_image_tokens=0, add_generation_prompt=False):
        return self.encode_text("".join(t.content for t in turns))

    def encode_text(self, text):
        ids = [A if ch == "a" else B for ch in text]
        return PromptEncoding(ids, [IGNORE_INDEX] * len(ids), [False] * len(ids))

    def decode_text(self, token_ids):
        return "".join(TEXT.get(t, "") for t in token_ids)

    def collate(self, encodings, padding_side="right"):
        width = max(len(e) for e in encodings)
        ids, mask = [], []
        for e in encodings:
            pad = width - len(e)
            row, m = e.input_ids, [1] * len(e)
            ids.append([END] * pad + row if padding_side == "left" else row + [END] * pad)
            mask.append([0] * pad + m if padding_side == "left" else m + [0] * pad)
        ids_t = torch.tensor(ids)
        return {"input_ids": ids_t, "attention_mask": torch.tensor(mask), "labels": torch.full_like(ids_t, -100),
                "image_mask": torch.zeros_like(ids_t, dtype=torch.bool)}

    # compute
    def embed_tokens(self, input_ids):
        return torch.zeros(*input_ids.shape, 1)

    def forward(self, inputs_embeds, batch, labels=None, output_hidden_states=False):
        raise NotImplementedError("PrefixLM only decodes")

    def prefill(self, inputs_embeds, batch):
        prefixes = [tuple(row[m.bool()].tolist()) for row, m in zip(batch["input_ids"], batch["attention_mask"])]
        return torch.stack([self.next_logits(p) for p in prefixes]), prefixes

    def decode(self, token_ids, state):
        self.decode_calls += 1
        state = [(*p, int(t)) for p, t in zip(state, token_ids)]
        return torch.stack([self.next_logits(p) for p in state]), state

    def reorder_state(self, state, index):
        return [state[i] for i in index.tolist()]


def _run(llm: PrefixLM, prompts: list[str], **kw) -> list[list[int]]:
    encodings = [llm.encode_text(p) for p in prompts]
    batch = llm.collate(encodings, padding_side="left")
    return generate(llm, llm.embed_tokens(batch["input_ids"]), batch, GenerationConfig(**kw))


def _ids(prompt: str) -> tuple[int, ...]:
    return tuple(A if c == "a" else B for c in prompt)


def _brute_force(llm: PrefixLM, prompt: str, max_len: int, length_penalty: float) -> tuple[int, ...]:
    """The best finished sequence: ends with END at or before max_len, or reaches
    max_len; score = sum log p / len ** length_penalty (END counted)."""
    best, best_score = None, -math.inf
    for n in range(1, max_len + 1):
        for body in itertools.product((A, B), repeat=n - 1):
            for last in (A, B, END):
                if n < max_len and last != END:
                    continue  # unfinished before max_len
                seq = (*body, last)
                score = llm.log_prob(_ids(prompt), seq) / n ** length_penalty
                if score > best_score:
                    best, best_score = seq, score
    return tuple(t for t in best if t != END)


def _greedy_by_hand(llm: PrefixLM, prompt: str, max_len: int, penalty: float = 1.0) -> list[int]:
    prefix, out = _ids(prompt), []
    for _ in range(max_len):
        logits = llm.next_logits(prefix)
        for t in set(prefix):  # CTRL: shrink the score of every token already present
            logits[t] = logits[t] * penalty if logits[t] < 0 else logits[t] / penalty
        token = int(logits.argmax())
        if token == END:
            break
        out.append(token)
        prefix += (token,)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_greedy_follows_the_argmax_and_stops_at_the_end_token(seed):
    llm = PrefixLM(seed, end_bias=0.5)
    prompts = ["ab", "babba", "a"]
    got = _run(llm, prompts, max_new_tokens=8)
    assert got == [_greedy_by_hand(llm, p, 8) for p in prompts]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("length_penalty", "early_stopping"), [(0.0, False), (1.0, "never"), (2.0, "never")])
def test_exhaustive_beam_search_finds_the_brute_force_optimum(seed, length_penalty, early_stopping):
    # with K >= every candidate of every step the beam covers the whole tree, and
    # these early-stopping rules never stop before the optimum is found
    llm = PrefixLM(seed, end_bias=-0.3)
    max_len = 4
    K = 3 * 2 ** (max_len - 1)
    got = _run(llm, ["ab"], max_new_tokens=max_len, num_beams=K, length_penalty=length_penalty,
               early_stopping=early_stopping)[0]
    assert tuple(got) == _brute_force(llm, "ab", max_len, length_penalty)


@pytest.mark.parametrize("seed", range(8))
def test_single_beam_without_length_penalty_is_greedy(seed):
    llm = PrefixLM(seed, end_bias=0.5)
    batch = llm.collate([llm.encode_text("ba")], padding_side="left")
    config = GenerationConfig(max_new_tokens=8, num_beams=1, length_penalty=0.0)
    # _beam_search itself with K = 1 (generate() routes num_beams=1 to the greedy loop)
    beam = _beam_search(llm, llm.embed_tokens(batch["input_ids"]), batch, config)
    assert beam == [_greedy_by_hand(llm, "ba", 8)]


def test_beam_search_finds_a_better_sequence_than_greedy_somewhere():
    # the point of beams: over a few models, at least one greedy answer is beaten
    better = 0
    for seed in range(12):
        llm = PrefixLM(seed, end_bias=-0.3)
        greedy = tuple(_greedy_by_hand(llm, "ab", 4))
        beam = tuple(_run(llm, ["ab"], max_new_tokens=4, num_beams=4, length_penalty=0.0)[0])

        def score(seq, llm=llm):
            full = seq + ((END,) if len(seq) < 4 else ())
            return llm.log_prob(_ids("ab"), full)

        assert score(beam) >= score(greedy) - 1e-6
        better += score(beam) > score(greedy) + 1e-6
    assert better > 0


def test_beam_search_over_a_batch_equals_one_by_one():
    llm = PrefixLM(3, end_bias=-0.2)
    prompts = ["a", "abba", "bab"]
    together = _run(llm, prompts, max_new_tokens=5, num_beams=3)
    alone = [_run(llm, [p], max_new_tokens=5, num_beams=3)[0] for p in prompts]
    assert together == alone


def test_max_new_tokens_bounds_the_length():
    llm = PrefixLM(1, end_bias=-50.0)  # never ends by itself
    assert [len(r) for r in _run(llm, ["ab", "b"], max_new_tokens=5)] == [5, 5]
    assert _run(llm, ["ab"], max_new_tokens=0) == [[]]
    assert len(_run(llm, ["ab"], max_new_tokens=5, num_beams=2)[0]) == 5


def test_stop_strings_end_generation_and_are_cut_off():
    llm = PrefixLM(4, end_bias=-50.0)
    free = llm.decode_text(_run(llm, ["ab"], max_new_tokens=12)[0])
    stop = free[4:6]  # a stop string that occurs somewhere in the free text
    first = free.find(stop)
    ids = _run(llm, ["ab"], max_new_tokens=12, stop_strings=[stop])[0]
    assert len(ids) == first + len(stop)  # stopped as soon as the stop string was complete
    assert decode_answer(llm, ids, [stop]) == free[:first]
    beam_ids = _run(llm, ["ab"], max_new_tokens=12, num_beams=2, stop_strings=[stop])[0]
    assert stop in llm.decode_text(beam_ids) or len(beam_ids) == 12


def test_finished_rows_do_not_keep_the_loop_running():
    llm = PrefixLM(0, end_bias=50.0)  # ends immediately
    assert _run(llm, ["ab", "ba"], max_new_tokens=20) == [[], []]
    assert llm.decode_calls == 0


def test_repetition_penalty_matches_the_ctrl_rule():
    scores = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    seen = torch.tensor([[True, True, False, False]])
    out = apply_repetition_penalty(scores, seen, 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, -3.0]]


def test_repetition_penalty_in_greedy_decoding_matches_the_rule_by_hand():
    changed = 0
    for seed in range(8):
        llm = PrefixLM(seed, end_bias=0.2)
        got = _run(llm, ["aa", "b"], max_new_tokens=6, repetition_penalty=3.0)
        assert got == [_greedy_by_hand(llm, p, 6, penalty=3.0) for p in ["aa", "b"]]
        changed += got != _run(llm, ["aa", "b"], max_new_tokens=6)
    assert changed > 0


def test_sampling_warpers():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    top_p = warp_for_sampling(scores, GenerationConfig(do_sample=True, top_p=0.7))
    assert torch.isfinite(top_p).tolist() == [[True, True, False, False]]  # 0.5 < 0.7 <= 0.8
    top_k = warp_for_sampling(scores, GenerationConfig(do_sample=True, top_k=3))
    assert torch.isfinite(top_k).tolist() == [[True, True, True, False]]
    hot = warp_for_sampling(scores, GenerationConfig(do_sample=True, temperature=0.5))
    assert torch.allclose(hot, scores * 2)


def test_sampling_is_reproducible_with_a_seed_and_varies_without_one():
    llm = PrefixLM(2, scale=0.3, end_bias=-50.0)
    a = _run(llm, ["ab"] * 4, max_new_tokens=10, do_sample=True, seed=7)
    b = _run(llm, ["ab"] * 4, max_new_tokens=10, do_sample=True, seed=7)
    c = _run(llm, ["ab"] * 4, max_new_tokens=10, do_sample=True, seed=8)
    assert a == b and a != c
    assert len({tuple(r) for r in a}) > 1  # rows sample independently


def test_top_k_one_sampling_is_greedy():
    llm = PrefixLM(6, end_bias=0.3)
    assert _run(llm, ["ba", "a"], max_new_tokens=8, do_sample=True, top_k=1, seed=0) == \
        _run(llm, ["ba", "a"], max_new_tokens=8)


def test_streamer_sees_every_token_in_order():
    llm = PrefixLM(3, end_bias=-1.0)
    batch = llm.collate([llm.encode_text("ab"), llm.encode_text("b")], padding_side="left")
    steps = []
    ids = generate(llm, llm.embed_tokens(batch["input_ids"]), batch, GenerationConfig(max_new_tokens=6),
                   streamer=steps.append)
    for row in range(2):
        streamed = [s[row] for s in steps if s[row] is not None and s[row] != END]
        assert streamed == ids[row]


def test_bad_generation_options_are_clear_errors():
    with pytest.raises(ConfigError, match="Did you mean 'max_new_tokens'"):
        GenerationConfig.from_kwargs(max_new_token=3)
    with pytest.raises(ConfigError, match="num_beams"):
        GenerationConfig(num_beams=0)
    with pytest.raises(ConfigError, match="beam sampling"):
        GenerationConfig(num_beams=2, do_sample=True)
    assert GenerationConfig(stop_strings="###").stop_strings == ("###",)


def test_loop_output_type_is_plain_lists():
    llm = PrefixLM(0)
    out = _run(llm, ["a"], max_new_tokens=3)
    assert isinstance(out, list) and all(isinstance(t, int) for t in out[0])

