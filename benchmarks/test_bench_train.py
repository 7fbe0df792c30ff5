"""Training step of the align stage: our ChatStack against Hugging Face's
``LlavaForConditionalGeneration`` with the same sizes and weights.

Vision tower + connector train, the LLM is frozen, in both. The batch is the
same captions of 8-40 tokens (seeded) collated by the align stage: right padding
for the peer; ours padded (the trainer's default) and packed
(``data.packing=true``), with the answer-only LM head, and once with the full
head to show what it buys. A step is zero_grad + forward + backward + AdamW.

Targets: ours >= 1.3x the peer's throughput; MFU (model FLOPs of the step /
step time / this process's measured ``torch.mm`` peak) >= 40%.
"""

import math

import bench_support as bs
import pytest
import torch

TRAIN_ROUNDS = {"cpu": (5, 1), "cuda": (20, 3)}  # (rounds, warmup rounds)


def _variants() -> list[str]:
    out = []
    for attn in bs.attention_backends():
        out += [f"mpm-padded-{attn}", f"mpm-packed-{attn}"]
    return [*out, "mpm-fullhead-sdpa", "peer-padded-sdpa"]


class Setup:
    def __init__(self, size: str) -> None:
        from mpm_framework.planning.estimate import flops_per_step

        self.size = size
        self.stack = bs.build_ours(size)
        self.peer = bs.build_peer(self.stack)
        self.batch = bs.align_batch(self.stack, bs.SIZES[size]["train_batch"])
        ours, peer = bs.set_trainable_align(self.stack, self.peer)
        assert ours == peer, f"trainable sets differ: ours {ours:,} vs peer {peer:,}"
        self.trainable = ours
        self._check_same_function()
        self.model_flops = bs.model_flops(self.stack, self.batch)
        n, width = self.batch.padded["input_ids"].shape
        self.planner_flops = flops_per_step(self.stack, n, width)
        self.stacks = {"sdpa": self.stack}
        self.stack.to(bs.device())
        self.peer.to(bs.device())
        self.peak = bs.matmul_peak()

    def _check_same_function(self) -> None:
        """Ours (answer-only head, padded or packed) and the peer (full head, padded)
        give the same loss on the same batch: same weights, same function."""
        stack, peer, batch = self.stack, self.peer, self.batch
        stack.eval()
        peer.eval()
        with torch.no_grad():
            losses = {"peer": float(bs.peer_loss(peer, batch.padded)),
                      "mpm-padded": float(bs.ours_loss(stack, batch.padded))}
            if batch.packed is not None:
                losses["mpm-packed"] = float(bs.ours_loss(stack, batch.packed))
        stack.train()
        peer.train()
        for name, value in losses.items():
            assert math.isclose(value, losses["peer"], rel_tol=1e-4), f"{name} loss differs: {losses}"
        self.losses = losses

    def stack_for(self, attn: str):
        if attn not in self.stacks:
            stack = bs.build_ours(self.size, attn=attn)
            stack.set_trainable(["vision", "connector"])
            self.stacks[attn] = stack.to(bs.device())
        return self.stacks[attn]


@pytest.fixture(scope="module")
def setup(bench_size, bench_device):
    return Setup(bench_size)


@pytest.mark.parametrize("variant", _variants())
def test_train_step(benchmark, tag, setup, variant):
    impl, layout, attn = variant.split("-")
    bs.skip_unavailable(attn)
    batch = setup.batch
    if impl == "peer":
        model, data = setup.peer, bs.to_device(batch.padded)
        loss_fn = lambda: bs.peer_loss(model, data)  # noqa: E731
    else:
        model = setup.stack_for(attn)
        if layout == "packed" and batch.packed is None:
            pytest.skip("the LLM does not support packing")
        data = bs.to_device(batch.packed if layout == "packed" else batch.padded)
        loss_fn = lambda: bs.ours_loss(model, data)  # noqa: E731
    info = dict(key=f"train/{variant}", units=len(batch.encodings), model_flops=setup.model_flops,
                planner_flops=setup.planner_flops, peak_gflops=round(setup.peak["gflops"], 2),
                peak_matmul=f"{setup.peak['n']}^2 {setup.peak['dtype']}",
                tokens=batch.tokens, rows=tuple(data["input_ids"].shape), label_tokens=batch.label_tokens,
                trainable=setup.trainable, mfu_target=0.40)
    if layout == "packed" and batch.extra.get("pack_reorders_samples"):
        info["note"] = "images put in packing order (the plugin's pack reorders samples)"
    if impl == "mpm":
        info.update(versus="train/peer-padded-sdpa", ratio="speedup", target=1.3)
    tag("training step (align)", impl, **info)
    optimizer = bs.adamw(model)
    rounds, warmup = TRAIN_ROUNDS[bs.device().type]
    full_head = layout == "fullhead"
    if full_head:
        model.llm.options.answer_only_head = False
    try:
        loss = benchmark.pedantic(bs.train_step, args=(loss_fn, optimizer), rounds=rounds, warmup_rounds=warmup)
    finally:
        if full_head:
            model.llm.options.answer_only_head = True
    if benchmark.enabled:  # the peak again, right after this load: the report takes the run's best
        benchmark.extra_info["peak_gflops_after"] = round(bs.matmul_peak(0.5)["gflops"], 2)
    assert math.isfinite(loss)


def test_model_flops_formula():
    """The analytic model-FLOP count used for MFU equals what torch's FLOP counter
    records for the same step (once the counter's flash-attention recompute is
    added), on the smoke sizes."""
    stack = bs.build_ours("smoke")
    stack.set_trainable(["vision", "connector"])
    batch = bs.align_batch(stack, 2, seed=3)
    assert bs.counted_step_flops(stack, batch) == bs.model_flops(stack, batch, flash_recompute=True)
    assert bs.model_flops(stack, batch) < bs.model_flops(stack, batch, flash_recompute=True)
