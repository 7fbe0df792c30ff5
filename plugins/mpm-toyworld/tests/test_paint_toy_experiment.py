"""The toy-world paint experiment: the judge, the plumbing (micro profile) and
the quick profile end to end (slow)."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from mpm_toyworld.paint_classifier import (
    ATTRIBUTES,
    accuracy,
    labels_of,
    render_batch,
    single_object_scenes,
    train_classifier,
)
from mpm_toyworld.paint_experiment import (
    PROFILES,
    PaintProfile,
    apply_settings,
    get_profile,
    main,
    run_paint_experiment,
)

from mpm_framework.testing import TinyLLM, TinyLLMConfig

MICRO = PaintProfile(
    "micro", image_size=16, block_out_channels=(16, 32), block_kinds=("plain", "cross"),
    train_renders=32, steps=3, batch_size=4, warmup_steps=1, sample_steps=2,
    classifier_train=64, classifier_test=32, classifier_epochs=1,
)


def _packs(codes):
    from mpm_framework.composition import load_language
    from mpm_framework.errors import UnknownComponentError

    try:
        return {code: load_language(code) for code in codes}
    except UnknownComponentError as exc:
        pytest.skip(f"language pack missing: {exc}")


def test_the_paint_world_and_its_labels():
    scenes = single_object_scenes(("large",))
    assert len(scenes) == 4 * 3 * 4 and len(set(scenes)) == len(scenes)
    labels = labels_of(scenes)
    assert set(labels) == set(ATTRIBUTES)
    assert labels["color"].bincount().tolist() == [12, 12, 12, 12]
    images = render_batch(scenes[:3], 16, __import__("random").Random(0))
    assert images.shape == (3, 3, 16, 16) and images.min() >= -1 and images.max() <= 1


def test_accuracy_counts_all_three_attributes_together():
    labels = {a: torch.tensor([0, 1, 2, 0]) for a in ATTRIBUTES}
    predicted = {a: v.clone() for a, v in labels.items()}
    predicted["shape"][1] = 0  # one shape wrong
    predicted["size"][:] = 1  # size is not part of "all"
    acc = accuracy(predicted, labels)
    assert acc["shape"] == 0.75 and acc["color"] == 1.0 and acc["all"] == 0.75


def test_the_judge_learns_colour_and_position_from_renders():
    scenes = single_object_scenes(("large",))
    _, report = train_classifier(scenes, 24, 640, 96, 5, progress=False)
    assert report.accuracy["color"] > 0.9 and report.accuracy["position"] > 0.9


def test_the_micro_profile_runs_every_step_and_writes_its_results(tmp_path, paint_components):
    packs = _packs(["en", "de"])
    llm = TinyLLM(TinyLLMConfig())
    result = run_paint_experiment(llm, ["de"], MICRO, packs=packs, out_dir=tmp_path, progress=False,
                                  log=lambda _: None)
    assert result.languages == ["en", "de"]
    assert set(result.zero_shot) == set(result.native) == {"en", "de"}
    for scores in (*result.zero_shot.values(), *result.native.values()):
        for value in (scores.color, scores.shape, scores.position, scores.all):
            assert 0.0 <= value <= 1.0
        assert scores.all <= min(scores.color, scores.shape, scores.position)
    assert all(math.isfinite(v) for v in result.train_loss.values())
    table = result.table()
    assert "zero-shot" in table and "native" in table and table.count("\nde ") == 1
    saved = json.loads((tmp_path / "paint_results.json").read_text())
    assert saved["zero_shot"]["de"]["all"] == result.zero_shot["de"].all
    assert (tmp_path / "zero_shot_de.png").is_file() and (tmp_path / "native_en.png").is_file()
    assert (tmp_path / "paint_table.txt").read_text().strip() == table.strip()
    assert (tmp_path / "decoders" / "zero_shot" / "adapter" / "adapter.safetensors").is_file()
    assert (tmp_path / "runs" / "native" / "paint" / "final" / "model.safetensors").is_file()
    assert not any(p.requires_grad for p in llm.parameters())  # the pivot stayed frozen


def test_a_paint_run_reloads_with_checkpoint_and_paints_like_its_saved_decoder(tmp_path, paint_components):
    """With the pivot's config, each run folder is a complete recipe: ``mpm compose
    paint --checkpoint`` rebuilds pivot + decoder, and paints exactly what the
    SD-layout decoder saved beside it paints next to the same pivot."""
    from click.testing import CliRunner
    from mpm_toyworld.paint_experiment import _load_llm
    from PIL import Image

    from mpm_framework.cli.main import cli

    llm, llm_config = _load_llm("tiny-llm", [])
    run_paint_experiment(llm, ["de"], MICRO, packs=_packs(["en", "de"]), out_dir=tmp_path, progress=False,
                         native=False, log=lambda _: None, llm_config=llm_config)
    prompt, common = "ein rotes Quadrat links", ["--steps", "2", "--seed", "3", "--guidance", "2", "--sampler", "ddim"]
    by_run, by_path = tmp_path / "run.png", tmp_path / "path.png"
    result = CliRunner().invoke(cli, ["compose", "paint", "--checkpoint", str(tmp_path / "runs" / "zero_shot"),
                                      prompt, "--out", str(by_run), *common])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--decoder", "unet", "--lang", "de",
                                      f"model.decoder.path={tmp_path / 'decoders' / 'zero_shot'}", "paint",
                                      prompt, "--out", str(by_path), *common])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(by_run)), np.asarray(Image.open(by_path)))


def test_profiles_settings_and_the_command_line(capsys):
    from mpm_framework.errors import ConfigError

    assert get_profile("quick") is PROFILES["quick"]
    with pytest.raises(ConfigError, match="Did you mean 'quick'"):
        get_profile("quik")
    changed = apply_settings(PROFILES["quick"], ["steps=7", "block_out_channels=8,16", "pooled_conditioning=false"])
    assert (changed.steps, changed.block_out_channels, changed.pooled_conditioning) == (7, (8, 16), False)
    with pytest.raises(ConfigError, match="Did you mean 'steps'"):
        apply_settings(PROFILES["quick"], ["stepz=3"])
    with pytest.raises(ConfigError, match="takes a int"):
        apply_settings(PROFILES["quick"], ["steps=many"])
    with pytest.raises(SystemExit):
        main(["--profile", "nope"])
    assert "unknown" not in capsys.readouterr().out


@pytest.mark.slow
def test_the_quick_profile_prints_its_table(tmp_path, paint_components, capsys):
    """The acceptance run: English-trained decoder, zh/de/fr prompts, the native
    condition beside it, on CPU in its quick profile (about 7.5 CPU-minutes on
    one thread). The quick budget checks the pipeline: with the random
    byte-level test pivot the accuracies sit near chance, so the test asserts
    what must hold regardless -- a working judge, decoders whose loss fell,
    a full table."""
    packs = _packs(["en", "zh", "de", "fr"])
    result = run_paint_experiment(TinyLLM(TinyLLMConfig()), ["zh", "de", "fr"], "quick", packs=packs,
                                  out_dir=tmp_path, progress=False)
    print(result.table())
    out = capsys.readouterr().out
    for code in ("en", "zh", "de", "fr"):
        assert f"\n{code} " in out
        for condition in (result.zero_shot, result.native):
            scores = condition[code]
            assert 0 <= scores.all <= min(scores.color, scores.shape, scores.position) <= 1
    assert min(result.classifier.accuracy[a] for a in ("color", "shape", "position")) > 0.95
    for name in ("zero_shot", "native"):
        assert result.train_loss[name] < 0.8 * result.start_loss[name]
    assert dataclasses.asdict(result)["profile"] == "quick"
