"""``mpm compose ... paint``: files, metadata, seeds, refusals, trained runs."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

TINY = [
    "model.decoder.image_size=16",
    "model.decoder.block_out_channels=[16,32]",
    "model.decoder.cross_attention_dim=32",
]


def run_cli(*args):
    from mpm_framework.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def compose_args(*lang):
    langs = [a for code in lang for a in ("--lang", code)]
    return ["compose", "--llm", "tiny-llm", "--decoder", "unet", *langs, *TINY]


def test_paint_writes_a_png_with_its_prompt_and_seed(paint_components, tmp_path):
    out = tmp_path / "out.png"
    result = run_cli(*compose_args("zh"), "paint", "一个红色的圆形在左边", "--out", str(out), "--steps", "2",
                     "--seed", "7")
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    assert image.size == (16, 16)
    assert image.text["prompt"] == "一个红色的圆形在左边" and image.text["seed"] == "7"
    assert image.text["lang"] == "zh" and image.text["guidance_scale"] == "7.5"
    assert "random weights" in result.output  # untrained decoder: the user is told
    again = tmp_path / "again.png"
    run_cli(*compose_args("zh"), "paint", "一个红色的圆形在左边", "--out", str(again), "--steps", "2", "--seed", "7")
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_several_prompts_and_images_get_numbered_files(paint_components, tmp_path):
    out = tmp_path / "grid.png"
    result = run_cli(*compose_args(), "paint", "a red circle", "a blue square", "--out", str(out),
                     "--steps", "2", "--images", "2", "--guidance", "3")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["grid-0-0.png", "grid-0-1.png", "grid-1-0.png", "grid-1-1.png"]
    assert Image.open(tmp_path / "grid-1-1.png").text["seed"] == "1"


def test_rerank_keeps_the_best_candidate(paint_components, tiny_clip, tmp_path):
    path, _, _ = tiny_clip
    out = tmp_path / "best.png"
    result = run_cli(*compose_args(), "paint", "a red circle", "--out", str(out), "--steps", "2",
                     "--images", "3", "--keep", "1", "--rerank", str(path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["best.png"]
    from mpm_framework.composition import compose
    from mpm_framework.paint.sampling import paint
    from mpm_framework.paint.scoring import CLIPScorer

    stack = compose(llm="tiny-llm", decoder="unet", overrides=TINY)  # the same seeded stack
    candidates = paint(stack, "a red circle", num_steps=2, images_per_prompt=3)[0]
    scores = CLIPScorer(path).score(candidates.images, "a red circle")
    best = max(range(3), key=lambda k: scores[k])
    saved = Image.open(out)
    assert saved.text["seed"] == str(candidates.seeds[best])
    assert float(saved.text["score"]) == pytest.approx(scores[best], abs=1e-3)


def test_refused_prompts_and_bad_options_are_one_line_errors(paint_components, tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("circle\n", encoding="utf-8")
    result = run_cli(*compose_args(), "paint", "a red circle", "--out", str(tmp_path / "x.png"),
                     "--steps", "1", "--blocklist", str(blocklist))
    assert result.exit_code != 0
    assert "refused: 'a red circle' (blocked term 'circle')" in result.output
    assert "every prompt was refused" in result.output and "Traceback" not in result.output
    result = run_cli(*compose_args(), "paint", "x", "--images", "2", "--keep", "3")
    assert result.exit_code != 0 and "--keep 3 is more than --images 2" in result.output


def test_a_chat_stack_cannot_paint(tiny_components):
    result = run_cli("compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "paint", "x")
    assert result.exit_code != 0 and "choose an image decoder" in result.output


def test_paint_from_a_trained_run(paint_components, tmp_path):
    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config
    from mpm_framework.paint.sampling import paint
    from mpm_framework.training import train_stage

    cfg = resolve_config(llm="tiny-llm", decoder="unet", overrides=[
        *TINY, "run.stage=paint", f"run.output_dir={tmp_path / 'run'}", "run.max_steps=2", "run.batch_size=2",
        "run.save_every=0",
    ])
    stack = build_stack(cfg)
    samples = [{"image": Image.new("RGB", (16, 16), (200, 30, 30)), "text": "a red square", "lang": "en"}] * 4
    train_stage(stack, cfg, train_samples=samples, progress=False)
    out = tmp_path / "trained.png"
    result = run_cli("compose", "paint", "--checkpoint", str(tmp_path / "run"), "a red square",
                     "--out", str(out), "--steps", "2", "--seed", "4")
    assert result.exit_code == 0, result.output
    assert "random weights" not in result.output
    expected = paint(stack, "a red square", seed=4, num_steps=2)[0].image
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(expected))


@pytest.mark.parametrize("missing", ["run"])
def test_a_missing_run_folder_is_a_clear_error(paint_components, tmp_path, missing):
    result = run_cli("compose", "paint", "--checkpoint", str(tmp_path / missing), "x")
    assert result.exit_code != 0 and "run directory not found" in result.output
