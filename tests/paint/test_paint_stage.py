"""The ``paint`` stage in the trainer: English pairs in, a trained decoder out,
the run folder loads back and paints the same images."""

import numpy as np
import pytest
import torch
from PIL import Image

from mpm_framework.errors import ConfigError

TINY = [
    "model.decoder.image_size=16",
    "model.decoder.block_out_channels=[16,32]",
    "model.decoder.cross_attention_dim=32",
    "model.decoder.caption_dropout=0.0",
]


def _pairs(n: int, lang: str = "en"):
    colours = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60), "yellow": (235, 200, 30)}
    records = []
    for i in range(n):
        name = list(colours)[i % 4]
        image = Image.new("RGB", (24, 24), (240, 240, 240))
        image.paste(colours[name], (0, 0, 12, 24) if i % 2 else (12, 0, 24, 24))
        side = "left" if i % 2 else "right"
        records.append({"image": image, "text": f"a {name} block on the {side}", "lang": lang})
    return records


def _cfg(tmp_path, *extra):
    from mpm_framework.config.loading import resolve_config

    return resolve_config(
        llm="tiny-llm", decoder="unet",
        overrides=[*TINY, "run.stage=paint", f"run.output_dir={tmp_path / 'run'}", "run.max_steps=12",
                   "run.batch_size=4", "run.lr=3e-3", "run.warmup_steps=0", "run.save_every=0",
                   "run.log_every=100", *extra],
    )


def test_the_paint_stage_trains_the_decoder_and_the_run_loads_back(paint_components, tmp_path):
    from mpm_framework.composition import build_stack
    from mpm_framework.paint.sampling import paint
    from mpm_framework.training import load_run, train_stage

    cfg = _cfg(tmp_path)
    stack = build_stack(cfg)
    before = {n: p.detach().clone() for n, p in stack.named_parameters()}
    result = train_stage(stack, cfg, train_samples=_pairs(16), progress=False)
    assert result.steps == 12 and result.trainable["llm"][0] == 0
    assert np.mean(result.losses[-4:]) < np.mean(result.losses[:4])
    changed = {n for n, p in stack.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("decoder.") for n in changed)
    assert any(".attn2." in n for n in changed) and any(n.startswith("decoder.adapter.") for n in changed)
    assert not any(n.startswith("decoder.unet.") and ".attn2." not in n for n in changed)  # VisCPM default

    loaded = load_run(tmp_path / "run")
    a = paint(stack, "a red block on the left", seed=3, num_steps=3)[0].image
    b = paint(loaded, "a red block on the left", seed=3, num_steps=3)[0].image
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_pairs_in_a_language_the_stack_lacks_are_skipped_and_counted(paint_components, tmp_path):
    from mpm_framework.composition import build_stack
    from mpm_framework.training import train_stage

    cfg = _cfg(tmp_path, "run.max_steps=2", "data.max_bad_fraction=0.5")
    samples = _pairs(8) + _pairs(2, lang="xx")
    result = train_stage(build_stack(cfg), cfg, train_samples=samples, progress=False)
    assert result.data["skipped"] >= 1
    assert "unknown_language" in str(result.data)


def test_the_paint_stage_refuses_a_chat_stack_and_a_trainable_llm(paint_components, tmp_path):
    from mpm_framework.composition import build_stack
    from mpm_framework.testing import tiny_chat_stack
    from mpm_framework.training import train_stage

    with pytest.raises(ConfigError, match="trains a paint stack"):
        train_stage(tiny_chat_stack(), _cfg(tmp_path), train_samples=_pairs(4), progress=False)
    cfg = _cfg(tmp_path, "run.trainable=[decoder.adapter,llm]")
    with pytest.raises(ConfigError, match="keeps the pivot LLM frozen"):
        train_stage(build_stack(cfg), cfg, train_samples=_pairs(4), progress=False)


class _Crash(Exception):
    pass


def test_adapter_statistics_survive_resume_and_reload(paint_components, tmp_path):
    """The adapter's standardisation statistics are buffers, not parameters: the
    checkpoint must carry them, or a resumed run and a reloaded run standardise
    with fresh (zero) statistics and paint something else."""
    from mpm_framework.composition import build_stack
    from mpm_framework.paint.sampling import paint
    from mpm_framework.training import load_run, train_stage

    def cfg(name, *extra):
        return _cfg(tmp_path / name, "model.decoder.adapter_standardize=true", "run.save_every=4", *extra)

    whole = build_stack(cfg("a"))
    reference = train_stage(whole, cfg("a"), train_samples=_pairs(16), progress=False)

    def crash(step, row):
        if step == 6:
            raise _Crash

    with pytest.raises(_Crash):
        train_stage(build_stack(cfg("b")), cfg("b"), train_samples=_pairs(16), progress=False, callbacks=[crash])
    resumed = build_stack(cfg("b", "run.resume=true"))
    result = train_stage(resumed, cfg("b", "run.resume=true"), train_samples=_pairs(16), progress=False)
    assert result.losses == reference.losses
    stats = {n: b for n, b in whole.named_buffers() if n.startswith("decoder.adapter.input_")}
    assert stats and int(stats["decoder.adapter.input_count"]) > 0
    for name, value in stats.items():
        torch.testing.assert_close(dict(resumed.named_buffers())[name], value, rtol=0, atol=1e-6)

    loaded = load_run(tmp_path / "a" / "run")
    for name, value in stats.items():
        assert torch.equal(dict(loaded.named_buffers())[name], value)
    a = paint(whole, "a red block on the left", seed=3, num_steps=3)[0].image
    b = paint(loaded, "a red block on the left", seed=3, num_steps=3)[0].image
    assert np.array_equal(np.asarray(a), np.asarray(b))
