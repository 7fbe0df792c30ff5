"""Generation: 64 new tokens, greedy with a KV cache, batch 1 and 8, our
ChatStack (``stack.generate``, the user-facing path: prompt encoding, image
encoding, decoding loop, detokenising) against ``LlavaForConditionalGeneration
.generate`` on the same weights and token ids (the peer's tokenisation and image
preprocessing are left out of its time). Then the second turn of a chat about
the same image: ours reuses the cached image encoding (``History``), the peer
encodes the image again with every call; ours re-encoding is measured too.
Last, a second turn after a 512-token history: ours extends the conversation's
KV cache kept in ``History`` (only the follow-up question is fed through the
LLM), the peer encodes the image and the whole conversation again; the whole
turn (64 new tokens) and its first token alone. For the cache to be reusable
the first answer must tokenise back to the tokens generated, so that stack's
LM head answers in lowercase letters only (its other rows are zero, in ours
and the peer alike). Target: <= 0.5x the peer's latency (>= 2.0x speedup).

The end tokens' LM-head rows are zero, so both run the full 64 steps; the
suites check once that both produce the same tokens. Target: >= 1.0x the peer.
"""

import bench_support as bs
import pytest
import torch

from mpm_framework.contracts.prompt import IMAGE_MARKER, Turn

QUESTIONS = ("What is in the image?", "Describe the scene in detail.", "What colour is the largest object?",
             "How many people are there?", "Is it day or night?", "What is the man holding?",
             "Where was this photo taken?", "Write a caption for this picture.")
FOLLOW_UP = "And what is on the left side of it?"
ROUNDS = {"cpu": (5, 1), "cuda": (10, 2)}


def _impls() -> list[str]:
    return [*(f"mpm-{attn}" for attn in bs.attention_backends()), "peer-sdpa"]


class Setup:
    def __init__(self, size: str) -> None:
        self.size = size
        self.stack = bs.build_ours(size)
        self.peer = bs.build_peer(self.stack)
        self.images = list(bs.pixels(len(QUESTIONS), self.stack.vision.image_size, seed=1))
        self.stacks = {"sdpa": self._ready(self.stack)}
        self._ready(self.peer)
        self.prompts = {n: self._peer_prompt([[Turn("user", f"{IMAGE_MARKER}\n{q}")] for q in QUESTIONS[:n]],
                                             self.images[:n]) for n in (1, 8)}
        _, self.history = self.stack.chat(self.images[0], QUESTIONS[0], max_new_tokens=bs.NEW_TOKENS)
        self.second_prompt = self._peer_prompt([[*self.history.turns, Turn("user", FOLLOW_UP)]], self.images[:1])
        self.matches = self._check_same_tokens()

    @staticmethod
    def _ready(model):
        model.eval()
        model.to(bs.device())
        if bs.on_gpu():
            model.to(torch.bfloat16)
        return model

    def _peer_prompt(self, conversations, images):
        llm = self.stack.llm
        encodings = [self.stack.encode_conversation(turns, add_generation_prompt=True) for turns in conversations]
        batch = llm.collate(encodings, padding_side="left")
        dtype = next(self.peer.parameters()).dtype
        return bs.to_device({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                             "pixel_values": torch.stack(images).to(dtype)})

    def peer_generate(self, prompt):
        with torch.no_grad():
            out = self.peer.generate(**prompt, max_new_tokens=bs.NEW_TOKENS, do_sample=False, num_beams=1,
                                     pad_token_id=self.stack.llm.pad_token_id,
                                     eos_token_id=list(self.stack.llm.stop_token_ids))
        bs.sync()
        return out[:, prompt["input_ids"].shape[1]:]

    def ours_generate(self, n: int, attn: str = "sdpa"):
        out = self.stack_for(attn).generate(self.images[:n], list(QUESTIONS[:n]), max_new_tokens=bs.NEW_TOKENS,
                                            batch_size=n)
        bs.sync()
        return out

    def ours_second_turn(self, fresh: bool):
        from mpm_framework.inference.chat import History

        history = self.history
        if fresh:  # the same turns, the image encoded again
            with torch.no_grad():
                pixels = self.images[0].to(bs.device(), next(self.stack.vision.parameters()).dtype)
                features = self.stack.encode_images(pixels[None])
            history = History(list(history.turns), features, self.images[0])
        answer, _ = self.stack.chat(self.images[0], FOLLOW_UP, history=history, max_new_tokens=bs.NEW_TOKENS)
        bs.sync()
        return answer

    def _check_same_tokens(self) -> dict[str, str]:
        """Answers of ours and the peer, decoded the same way, agree (asserted in
        fp32; in bf16 near-ties may flip a token, so the share is recorded)."""
        llm = self.stack.llm
        pairs = {
            "batch 8": (self.ours_generate(8), self.peer_generate(self.prompts[8])),
            "second turn": ([self.ours_second_turn(False), self.ours_second_turn(True)],
                            self.peer_generate(self.second_prompt).repeat(2, 1)),
        }
        result = {}
        for name, (ours, peer_ids) in pairs.items():
            assert all(len(row) == bs.NEW_TOKENS for row in peer_ids.tolist())
            theirs = [llm.decode_text(row).strip() for row in peer_ids.tolist()]
            same = sum(a == b for a, b in zip(ours, theirs))
            if not bs.on_gpu():
                assert same == len(ours), f"{name}: ours and the peer answer differently:\n{ours}\n{theirs}"
            result[name] = f"{same}/{len(ours)}"
        return result

    def stack_for(self, attn: str):
        if attn not in self.stacks:
            self.stacks[attn] = self._ready(bs.build_ours(self.size, attn=attn))
        return self.stacks[attn]


@pytest.fixture(scope="module")
def setup(bench_size, bench_device):
    return Setup(bench_size)


HISTORY_TOKENS = 512


class LongHistory:
    """A chat whose second turn follows a ``HISTORY_TOKENS``-token first exchange
    (image slots, a long question, a 64-token answer)."""

    def __init__(self, size: str) -> None:
        from mpm_framework.inference.chat import reusable_prefix

        self.stack = bs.build_ours(size)
        llm = self.stack.llm
        letters = [llm.tokenizer.convert_tokens_to_ids(c) for c in "abcdefghijklmnopqrstuvwxyz"]
        with torch.no_grad():  # before the peer copies the weights: both answer in letters
            head = llm.hf.get_output_embeddings().weight
            keep = torch.zeros(head.shape[0], dtype=torch.bool)
            keep[letters] = True
            head[~keep] = 0
        self.peer = bs.build_peer(self.stack)
        Setup._ready(self.stack)
        Setup._ready(self.peer)
        self.image = bs.pixels(1, self.stack.vision.image_size, seed=2)[0]
        question = self._question()
        _, self.history = self.stack.chat(self.image, question, max_new_tokens=bs.NEW_TOKENS)
        self.history_tokens = len(self.stack.encode_conversation(self.history.turns))
        follow_up = self.stack.encode_conversation([*self.history.turns, Turn("user", FOLLOW_UP)],
                                                   add_generation_prompt=True)
        if reusable_prefix(self.history.decode_cache, follow_up, self.history.image_features) is None:
            raise AssertionError("the first answer does not tokenise back to its tokens: the cache is not reused")
        batch = llm.collate([follow_up], padding_side="left")
        dtype = next(self.peer.parameters()).dtype
        self.peer_prompt = bs.to_device({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                                         "pixel_values": self.image[None].to(dtype)})
        self.matches = self._check_same_tokens()

    def _question(self) -> str:
        """A question long enough that prompt + answer make ``HISTORY_TOKENS`` tokens."""
        words = " ".join(QUESTIONS * 40)
        for n in range(1, len(words)):
            turns = [Turn("user", f"{IMAGE_MARKER}\n{words[:n]}")]
            if len(self.stack.encode_conversation(turns, add_generation_prompt=True)) + bs.NEW_TOKENS + 1 \
                    >= HISTORY_TOKENS:
                return words[:n]
        raise AssertionError("no question reaches the history length")

    def ours(self, fresh: bool, new_tokens: int = bs.NEW_TOKENS):
        from mpm_framework.inference.chat import History

        history = self.history
        if fresh:  # the same conversation without its decode state: encoded again
            history = History(list(history.turns), history.image_features, history.pixel_values)
        answer, _ = self.stack.chat(None, FOLLOW_UP, history=history, max_new_tokens=new_tokens)
        bs.sync()
        return answer

    def peer_generate(self, new_tokens: int = bs.NEW_TOKENS):
        with torch.no_grad():
            out = self.peer.generate(**self.peer_prompt, max_new_tokens=new_tokens, do_sample=False, num_beams=1,
                                     pad_token_id=self.stack.llm.pad_token_id,
                                     eos_token_id=list(self.stack.llm.stop_token_ids))
        bs.sync()
        return out[:, self.peer_prompt["input_ids"].shape[1]:]

    def _check_same_tokens(self) -> str:
        theirs = self.stack.llm.decode_text(self.peer_generate()[0].tolist()).strip()
        ours = [self.ours(False), self.ours(True)]
        same = sum(a == theirs for a in ours)
        if not bs.on_gpu():
            assert same == len(ours), f"ours (cached, fresh) and the peer answer differently:\n{ours}\n{theirs}"
        return f"{same}/{len(ours)}"


@pytest.fixture(scope="module")
def long_history(bench_size, bench_device):
    return LongHistory(bench_size)


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("impl", _impls())
def test_generate(benchmark, tag, setup, impl, batch):
    who, attn = impl.split("-")
    bs.skip_unavailable(attn)
    info = dict(key=f"generate-b{batch}/{impl}", new_tokens=bs.NEW_TOKENS, batch=batch,
                same_answers=setup.matches["batch 8"])
    if who == "mpm":
        info.update(versus=f"generate-b{batch}/peer-sdpa", ratio="speedup", target=1.0)
        fn, args = setup.ours_generate, (batch, attn)
    else:
        fn, args = setup.peer_generate, (setup.prompts[batch],)
    tag(f"generation, batch {batch}", who, **info)
    rounds, warmup = ROUNDS[bs.device().type]
    out = benchmark.pedantic(fn, args=args, rounds=rounds, warmup_rounds=warmup)
    assert len(out) == batch


@pytest.mark.parametrize("impl", ["mpm-cached", "mpm-fresh", "peer-fresh"])
def test_second_turn(benchmark, tag, setup, impl):
    who, image = impl.split("-")
    info = dict(key=f"second-turn/{impl}", new_tokens=bs.NEW_TOKENS, image=image,
                same_answers=setup.matches["second turn"])
    if who == "mpm":
        info.update(versus="second-turn/peer-fresh", ratio="speedup", target=1.0)
        fn, args = setup.ours_second_turn, (image == "fresh",)
    else:
        fn, args = setup.peer_generate, (setup.second_prompt,)
    tag("chat: second turn on the same image", who, **info)
    rounds, warmup = ROUNDS[bs.device().type]
    benchmark.pedantic(fn, args=args, rounds=rounds, warmup_rounds=warmup)


@pytest.mark.parametrize("new_tokens", [bs.NEW_TOKENS, 1])
@pytest.mark.parametrize("impl", ["mpm-cached", "mpm-fresh", "peer-fresh"])
def test_second_turn_long_history(benchmark, tag, long_history, impl, new_tokens):
    who, cache = impl.split("-")
    turn = "second-turn-512" if new_tokens > 1 else "first-token-512"
    info = dict(key=f"{turn}/{impl}", new_tokens=new_tokens, history_tokens=long_history.history_tokens,
                kv_cache=cache, same_answers=long_history.matches)
    if who == "mpm":
        info.update(versus=f"{turn}/peer-fresh", ratio="speedup", target=2.0 if cache == "cached" else 1.0)
        fn, args = long_history.ours, (cache == "fresh", new_tokens)
    else:
        fn, args = long_history.peer_generate, (new_tokens,)
    what = "the whole turn" if new_tokens > 1 else "its first token"
    tag(f"chat: second turn after a {HISTORY_TOKENS}-token history, {what}", who, **info)
    rounds, warmup = ROUNDS[bs.device().type]
    benchmark.pedantic(fn, args=args, rounds=rounds, warmup_rounds=warmup)
