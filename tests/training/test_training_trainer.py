"""The trainer in one process: learning, exact resume, bad data, checkpoints, run folders."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from mpm_framework.errors import ConfigError, DataError
from mpm_framework.testing import TinyLLM, TinyLLMConfig, tiny_chat_stack
from mpm_framework.training import load_run, train_stage
from mpm_framework.training.checkpoint import list_checkpoints
from mpm_framework.training.metrics import read_metrics


def _trained(stack):
    return {n: p.detach().clone() for n, p in stack.named_parameters() if p.requires_grad}


def test_pretrain_learns_text_with_a_bare_llm(tmp_path, make_cfg):
    llm = TinyLLM(TinyLLMConfig())
    texts = [{"text": "the red circle is on the left."}, {"text": "the blue square is at the top."}] * 8
    cfg = make_cfg(stage="pretrain", max_steps=30, lr=3e-3, batch_size=4, save_every=0)
    result = train_stage(llm, cfg, train_samples=texts, progress=False)
    assert result.steps == 30 and len(result.losses) == 30
    assert sum(result.losses[-5:]) / 5 < 0.6 * sum(result.losses[:5]) / 5
    rows = read_metrics(tmp_path / "run" / "pretrain" / "metrics.jsonl")
    steps = [r for r in rows if r["event"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 31))
    assert steps[0]["lr"] == 0.0 and steps[2]["lr"] == pytest.approx(3e-3, rel=1e-3)  # warmup, then cosine
    assert rows[-1]["event"] == "end" and (tmp_path / "run" / "pretrain" / "loss_curve.png").stat().st_size > 0


def test_align_trains_the_connector_only(pairs_dir, make_cfg):
    stack = tiny_chat_stack()
    before = {n: p.detach().clone() for n, p in stack.named_parameters()}
    result = train_stage(stack, make_cfg(pairs_dir / "pairs.jsonl"), progress=False)
    changed = {n for n, p in stack.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("connector.") for n in changed)
    assert result.trainable["llm"][0] == 0 and result.trainable["connector"][0] > 0
    saved = load_file(str(pairs_dir / "run" / "align" / "final" / "model.safetensors"))
    assert set(saved) == {n for n in before if n.startswith("connector.")}


class _Crash(Exception):
    pass


@pytest.mark.parametrize("streaming", [False, True])
def test_resume_after_a_crash_is_exact(pairs_dir, make_cfg, streaming):
    """In-process twin of the kill -9 test: same losses, same weights."""
    def cfg(out, **kw):
        return make_cfg(pairs_dir / "pairs.jsonl", output_dir=str(pairs_dir / out), max_steps=10, save_every=4,
                        stage="instruct", data={"streaming": streaming, "shuffle_buffer": 8}, **kw)

    whole = tiny_chat_stack()
    reference = train_stage(whole, cfg("a"), progress=False)

    def crash(step, row):
        if step == 6:
            raise _Crash

    with pytest.raises(_Crash):
        train_stage(tiny_chat_stack(), cfg("b"), progress=False, callbacks=[crash])
    resumed_stack = tiny_chat_stack()
    resumed = train_stage(resumed_stack, cfg("b", resume=True), progress=False)
    assert resumed.losses == reference.losses  # steps 1-4 from the file, 5-10 recomputed
    for name, value in _trained(whole).items():
        torch.testing.assert_close(_trained(resumed_stack)[name], value, rtol=0, atol=1e-6)
    curve = [r["loss"] for r in read_metrics(pairs_dir / "b" / "instruct" / "metrics.jsonl") if r["event"] == "step"]
    assert curve == reference.losses  # the steps logged after the checkpoint were dropped, not doubled


def test_sigterm_saves_the_finished_step_and_resume_is_exact(pairs_dir, make_cfg):
    import os
    import signal

    from mpm_framework.training import TrainingInterrupted

    def cfg(out, **kw):
        return make_cfg(pairs_dir / "pairs.jsonl", output_dir=str(pairs_dir / out), max_steps=8, save_every=0,
                        stage="instruct", precision="bf16", **kw)

    reference = train_stage(tiny_chat_stack(), cfg("a"), progress=False)

    def preempt(step, row):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="--resume") as info:
        train_stage(tiny_chat_stack(), cfg("b"), progress=False, callbacks=[preempt])
    assert "step 4/8" in str(info.value)  # the step in flight when the signal came is finished and saved
    assert [s for s, _ in list_checkpoints(pairs_dir / "b" / "instruct" / "checkpoints")] == [4]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    resumed = train_stage(tiny_chat_stack(), cfg("b", resume=True), progress=False)
    assert resumed.losses == reference.losses  # bf16 autocast too


def test_gradient_accumulation_matches_a_bigger_batch(pairs_dir, make_cfg):
    big = train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", output_dir=str(pairs_dir / "a"),
                                                  batch_size=4, stage="instruct"), progress=False)
    small = train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", output_dir=str(pairs_dir / "b"),
                                                    batch_size=2, grad_accum=2, stage="instruct"), progress=False)
    assert big.losses == pytest.approx(small.losses, rel=1e-5)


def test_data_loader_workers_give_the_same_run(pairs_dir, make_cfg):
    inline = train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", output_dir=str(pairs_dir / "a")),
                         progress=False)
    workers = train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", output_dir=str(pairs_dir / "b"),
                                                      data={"num_workers": 2}), progress=False)
    assert inline.losses == workers.losses


# -- bad data ------------------------------------------------------------------------------


def _bad_file(folder, helpers, n, bad):
    """``n`` records of which the indices in ``bad`` are broken, four different ways."""
    corrupt = {i for k, i in enumerate(sorted(bad)) if k % 4 == 0}
    helpers.write_images(folder, n, corrupt=corrupt)
    records = helpers.pair_records(n)
    raw = {}
    for k, i in enumerate(sorted(bad)):
        if k % 4 == 1:
            raw[i] = '{"image": "img1.png", "text": "cut off'
        elif k % 4 == 2:
            records[i]["text"] = ""
        elif k % 4 == 3:
            records[i]["image"] = f"missing{i}.png"
    return helpers.write_jsonl(folder / "bad.jsonl", records, raw_lines=raw)


def test_ten_percent_bad_data_trains_to_the_end_with_counts(tmp_path, helpers, make_cfg):
    path = _bad_file(tmp_path, helpers, 40, bad={3, 13, 23, 33})
    cfg = make_cfg(path, max_steps=10, batch_size=4, save_every=0)  # exactly one epoch: 40 records
    result = train_stage(tiny_chat_stack(), cfg, progress=False)
    assert result.steps == 10
    assert result.data["seen"] == 40 and result.data["skipped"] == 4
    assert result.data["by_reason"] == {"corrupt_image": 1, "malformed": 1, "empty_text": 1, "missing_image": 1}
    rows = read_metrics(tmp_path / "run" / "align" / "metrics.jsonl")
    assert rows[-1]["data"]["skipped"] == 4 and rows[-2]["skipped"] == 4
    summary = json.loads((tmp_path / "run" / "align" / "final" / "summary.json").read_text())
    assert summary["data"]["by_reason"]["malformed"] == 1


def test_sixty_percent_bad_data_stops_with_a_clear_error(tmp_path, helpers, make_cfg):
    bad = {i for i in range(40) if i % 5 in (0, 1, 2)}  # 24 of 40
    path = _bad_file(tmp_path, helpers, 40, bad=bad)
    cfg = make_cfg(path, max_steps=10, batch_size=4, save_every=0, data={"bad_check_after": 16})
    with pytest.raises(DataError) as info:
        train_stage(tiny_chat_stack(), cfg, progress=False)
    message = str(info.value)
    assert "too much bad data" in message and "max_bad_fraction=0.2" in message
    assert "bad.jsonl:" in message and "corrupt_image" in message  # names examples and reasons
    assert not (tmp_path / "run" / "align" / "final").exists()


def test_a_micro_batch_of_only_bad_records_keeps_the_step_count(tmp_path, helpers, make_cfg):
    path = _bad_file(tmp_path, helpers, 16, bad={0, 1})  # with no shuffle, micro-batch 0 of step 1 is all bad
    cfg = make_cfg(path, max_steps=4, batch_size=2, grad_accum=2, save_every=0,
                   data={"shuffle": False, "max_bad_fraction": 0.5})
    result = train_stage(tiny_chat_stack(), cfg, progress=False)
    rows = [r for r in read_metrics(tmp_path / "run" / "align" / "metrics.jsonl") if r["event"] == "step"]
    assert result.steps == 4 and rows[0]["samples"] == 2 and rows[1]["samples"] == 4


# -- run folders ------------------------------------------------------------------------------


def test_existing_run_is_not_overwritten_without_asking(pairs_dir, make_cfg):
    train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", max_steps=2), progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", max_steps=2), progress=False)
    train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", max_steps=2, overwrite=True), progress=False)


def test_keep_last_and_atomic_layout(pairs_dir, make_cfg):
    (pairs_dir / "run" / "align" / "checkpoints" / "step-00000002.tmp").mkdir(parents=True)  # a killed write
    train_stage(tiny_chat_stack(), make_cfg(pairs_dir / "pairs.jsonl", max_steps=8, save_every=2, keep_last=2,
                                            resume=True), progress=False)
    root = pairs_dir / "run" / "align" / "checkpoints"
    assert [s for s, _ in list_checkpoints(root)] == [6, 8]
    assert sorted(p.name for p in root.iterdir()) == ["step-00000006", "step-00000008"]
    state = json.loads((root / "step-00000008" / "trainer_state.json").read_text())
    assert state["step"] == 8 and state["data"]["index"] == 32


def test_eval_hooks(pairs_dir, make_cfg, helpers):
    calls = []

    def eval_fn(stack, step):
        calls.append(step)
        return {"probe": float(step)}

    cfg = make_cfg(pairs_dir / "pairs.jsonl", max_steps=6, eval_every=2, save_every=0)
    records = helpers.pair_records(8)
    for r in records:
        r["image"] = str(pairs_dir / r["image"])
    result = train_stage(tiny_chat_stack(), cfg, eval_fn=eval_fn, eval_samples=records, progress=False)
    assert calls == [2, 4, 6]
    assert all("loss" in e["eval"] and e["eval"]["probe"] == e["step"] for e in result.evals)
    rows = [r for r in read_metrics(pairs_dir / "run" / "align" / "metrics.jsonl") if r["event"] == "eval"]
    assert [r["step"] for r in rows] == [2, 4, 6]


def test_one_shot_iterable_ends_training_early(make_cfg):
    records = ({"text": f"document {i}"} for i in range(10))
    result = train_stage(TinyLLM(TinyLLMConfig()), make_cfg(stage="pretrain", max_steps=50, batch_size=4,
                                                            save_every=0), train_samples=records, progress=False)
    assert result.exhausted and result.steps == 2


# -- composed stacks: load_run, chains, LoRA -------------------------------------------------------


def _recipe(tmp_path, pairs, **stages):
    return {"model": {"llm": "tiny-llm", "vision": "tiny-vision"},
            "data": {"train": [{"path": str(pairs)}], "max_length": 256},
            "run": {"output_dir": str(tmp_path / "run"), "max_steps": 3, "batch_size": 4, "save_every": 0,
                    "progress": False, "lr": 1e-2},
            "stages": stages}


def test_load_run_rebuilds_the_trained_stack(tiny_components, pairs_dir):
    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config

    cfg = resolve_config(recipe=_recipe(pairs_dir, pairs_dir / "pairs.jsonl"))
    stack = build_stack(cfg)
    train_stage(stack, cfg, progress=False)
    loaded = load_run(pairs_dir / "run")
    for name, p in stack.named_parameters():
        assert torch.equal(p, dict(loaded.named_parameters())[name]), name
    assert not loaded.training


def test_recipe_chain_align_then_instruct(tiny_components, pairs_dir):
    from mpm_framework.config.loading import resolve_config
    from mpm_framework.training.launch import train_from_config

    recipe = _recipe(pairs_dir, pairs_dir / "pairs.jsonl", align={"run": {"lr": 5e-2}},
                     instruct={"run": {"max_steps": 2, "trainable": ["llm.head"]}})
    cfg = resolve_config(recipe=recipe)
    align, instruct = train_from_config(cfg, "all", progress=False)
    assert (align.stage, instruct.stage) == ("align", "instruct")
    saved = load_file(str(pairs_dir / "run" / "instruct" / "final" / "model.safetensors"))
    aligned = load_file(str(pairs_dir / "run" / "align" / "final" / "model.safetensors"))
    assert any(k.startswith("llm.head") for k in saved)
    for k, v in aligned.items():  # inherited from align, carried into instruct's final weights
        assert torch.equal(saved[k], v)
    index = json.loads((pairs_dir / "run" / "run.json").read_text())
    assert [s["stage"] for s in index["stages"]] == ["align", "instruct"]
    final = load_run(pairs_dir / "run")  # the last stage
    assert torch.equal(dict(final.named_parameters())["connector.proj.0.weight"], aligned["connector.proj.0.weight"])
    assert OmegaConf.load(pairs_dir / "run" / "instruct" / "config.yaml").run.lr == 1e-2
    again = train_from_config(resolve_config(recipe=recipe), "all", resume=True, progress=False)
    assert again == []  # both finished: nothing to do


def test_lora_trains_adapters_and_reloads(tiny_components, pairs_dir):
    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config

    recipe = _recipe(pairs_dir, pairs_dir / "pairs.jsonl")
    recipe["run"].update(stage="instruct", lora={"r": 4, "target_modules": ["linear1", "linear2"]})
    cfg = resolve_config(recipe=recipe)
    stack = build_stack(cfg)
    result = train_stage(stack, cfg, progress=False)
    trained = load_file(str(pairs_dir / "run" / "instruct" / "final" / "model.safetensors"))
    assert any(".lora_A." in k for k in trained) and not any(k.startswith("llm.tok") for k in trained)
    assert 0 < result.trainable["llm"][0] < result.trainable["llm"][1]
    loaded = load_run(pairs_dir / "run")
    for name, value in trained.items():
        assert torch.equal(dict(loaded.named_parameters())[name], value)


# -- a stage from outside the trainer (how the paint stage plugs in) ------------------------------


class _PaintLike(torch.nn.Module):
    """A text -> image toy with PaintStack's interface: forward(batch) is the loss."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.llm = torch.nn.Embedding(256, 8)
        self.decoder = torch.nn.Linear(8, 3 * 8 * 8)
        self.languages = {}

    def components(self):
        return {"llm": self.llm, "decoder": self.decoder}

    def set_trainable(self, trainable, frozen=()):
        from mpm_framework.stacks.trainable import apply_freeze_sets

        return apply_freeze_sets(self.components(), list(trainable), list(frozen))

    def image_transform(self, train=False):
        from mpm_framework.imaging import ImageTransform

        return ImageTransform(8, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), train=False)

    def forward(self, batch):
        ids = [torch.tensor(list(p.encode())[:16] or [0]) for p in batch["prompts"]]
        cond = torch.stack([self.llm(i).mean(0) for i in ids])
        return torch.nn.functional.mse_loss(self.decoder(cond), batch["images"].flatten(1))


def test_a_registered_stage_trains_a_paint_like_stack(pairs_dir, make_cfg):
    from mpm_framework.training import Stage, register_stage, stages

    class PaintLikeStage(Stage):
        name = "paint-like-test"
        sample_kinds = ("pairs",)

        def default_trainable(self, stack, cfg=None):
            return ["decoder"]

        def prepare(self, sample, rng, ctx):
            return (ctx.image_tensor(sample, rng), sample.text)

        def collate(self, items, ctx):
            return {"images": torch.stack([i for i, _ in items]), "prompts": [t for _, t in items]}

        def loss_units(self, batch):
            return len(batch["prompts"])

    register_stage(PaintLikeStage)
    try:
        stack = _PaintLike()
        llm_before = stack.llm.weight.clone()
        result = train_stage(stack, make_cfg(pairs_dir / "pairs.jsonl", stage="paint-like-test", max_steps=10,
                                             lr=0.05, save_every=5), progress=False)
    finally:
        stages._STAGES.pop("paint-like-test", None)
    assert result.losses[-1] < result.losses[0] and torch.equal(stack.llm.weight, llm_before)
    assert result.trainable == {"llm": (0, 2048), "decoder": (1728, 1728)}
