"""The core decoding loop against transformers' own ``generate`` on a tiny random Llama.

``HFCausalLM`` below is a minimal PivotLLM over any transformers causal LM
(prefill / decode with a DynamicCache, reorder_state with the cache's own
``reorder_cache``), so the loop's greedy, beam search, repetition penalty and
sampling can be compared token for token with transformers' implementations.
"""

from __future__ import annotations

import pytest
import torch

from mpm_framework.contracts.llm import PivotLLM
from mpm_framework.inference.generation import GenerationConfig, generate

transformers = pytest.importorskip("transformers")

VOCAB, EOS, PAD = 48, 2, 0


class HFCausalLM(PivotLLM):
    eos_token_id = EOS
    pad_token_id = PAD

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.vocab_size = model.config.vocab_size
        self.hidden_size = model.config.hidden_size
        self.num_layers = model.config.num_hidden_layers

    def format_prompt(self, turns, num_image_tokens=0, add_generation_prompt=False):
        raise NotImplementedError

    def encode_text(self, text):
        raise NotImplementedError

    def decode_text(self, token_ids):
        return " ".join(str(t) for t in token_ids)

    def collate(self, encodings, padding_side="right"):
        raise NotImplementedError

    def embed_tokens(self, input_ids):
        return self.model.get_input_embeddings()(input_ids)

    def forward(self, inputs_embeds, batch, labels=None, output_hidden_states=False):
        raise NotImplementedError

    def prefill(self, inputs_embeds, batch):
        mask = batch["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
        cache = transformers.DynamicCache(config=self.model.config)
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=positions,
                         past_key_values=cache, use_cache=True)
        return out.logits[:, -1].float(), (out.past_key_values, mask, positions[:, -1])

    def decode(self, token_ids, state):
        cache, mask, last = state
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
        last = last + 1
        out = self.model(input_ids=token_ids[:, None], attention_mask=mask, position_ids=last[:, None],
                         past_key_values=cache, use_cache=True)
        return out.logits[:, -1].float(), (out.past_key_values, mask, last)

    def reorder_state(self, state, index):
        cache, mask, last = state
        cache.reorder_cache(index)
        return cache, mask.index_select(0, index), last.index_select(0, index)


@pytest.fixture(scope="module")
def llama():
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, bos_token_id=1, eos_token_id=EOS,
        pad_token_id=PAD,
    )
    torch.manual_seed(1)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # spread the logits so that choices are clear-cut
        model.lm_head.weight.mul_(10.0)
        model.lm_head.weight[EOS] *= 1.5  # some rows end early, some run to the limit
    return model


PROMPTS = [[1, 5, 9, 13, 21, 7], [1, 30, 4], [1, 11, 11, 40, 3, 8, 17, 25, 6]]


def _left_pad(prompts):
    width = max(map(len, prompts))
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def _hf(model, prompts, **kw):
    ids, mask = _left_pad(prompts)
    out = model.generate(input_ids=ids, attention_mask=mask, pad_token_id=PAD, eos_token_id=EOS, **kw)
    rows = []
    for row in out[:, ids.shape[1]:].tolist():
        rows.append(row[: row.index(EOS)] if EOS in row else row)
    return rows


def _ours(model, prompts, **kw):
    llm = HFCausalLM(model)
    ids, mask = _left_pad(prompts)
    batch = {"input_ids": ids, "attention_mask": mask}
    with torch.no_grad():
        return generate(llm, llm.embed_tokens(ids), batch, GenerationConfig(**kw))


def test_batched_greedy_equals_transformers(llama):
    hf = _hf(llama, PROMPTS, max_new_tokens=12, do_sample=False)
    assert _ours(llama, PROMPTS, max_new_tokens=12) == hf
    assert sorted(map(len, hf)) == [1, 4, 12]  # the end token, padding and the limit all matter here


def test_batched_greedy_equals_one_by_one(llama):
    together = _ours(llama, PROMPTS, max_new_tokens=12)
    assert together == [_ours(llama, [p], max_new_tokens=12)[0] for p in PROMPTS]


@pytest.mark.parametrize(("num_beams", "length_penalty"), [(3, 1.0), (4, 0.5), (2, 1.5)])
def test_beam_search_equals_transformers(llama, num_beams, length_penalty):
    kw = dict(max_new_tokens=10, num_beams=num_beams, length_penalty=length_penalty)
    ours = _ours(llama, PROMPTS, **kw)
    assert ours == _hf(llama, PROMPTS, do_sample=False, **kw)
    assert ours != _ours(llama, PROMPTS, max_new_tokens=10)  # beams found something greedy did not


def test_beam_search_with_early_stopping_equals_transformers(llama):
    kw = dict(max_new_tokens=10, num_beams=3, early_stopping=True)
    assert _ours(llama, PROMPTS, **kw) == _hf(llama, PROMPTS, do_sample=False, **kw)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_repetition_penalty_equals_transformers(llama, num_beams):
    for prompt in PROMPTS:  # one row each: HF would also penalise the pad token in padded rows
        kw = dict(max_new_tokens=10, num_beams=num_beams, repetition_penalty=1.8)
        assert _ours(llama, [prompt], **kw) == _hf(llama, [prompt], do_sample=False, **kw)


def test_sampling_equals_transformers_with_the_same_random_state(llama):
    kw = dict(max_new_tokens=10, temperature=0.7, top_k=12, top_p=0.9)
    torch.manual_seed(123)
    hf = _hf(llama, PROMPTS, do_sample=True, **kw)
    torch.manual_seed(123)
    ours = _ours(llama, PROMPTS, do_sample=True, **kw)  # seed=None: torch's global generator, as HF
    assert ours == hf
    assert ours != _ours(llama, PROMPTS, max_new_tokens=10)
