from pathlib import Path

import pytest
from click.testing import CliRunner

from mpm_framework.cli.main import cli
from mpm_framework.composition import build_stack
from mpm_framework.config.loading import resolve_config
from mpm_framework.planning.estimate import count_parameters, make_plan, state_bytes
from mpm_framework.planning.hardware import GiB, Hardware, Precision, parse_size
from mpm_framework.planning.measure import measure_in_subprocess

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "recipes" / "tiny_plan.yaml"
SMALL = ROOT / "examples" / "recipes" / "small_plan.yaml"


def test_parse_size():
    assert parse_size("80GB") == 80 * GiB
    assert parse_size("24GiB") == 24 * GiB
    assert parse_size("512m") == 512 * 2**20
    with pytest.raises(Exception, match="80GB"):
        parse_size("eighty")


def test_zero_partitioning_by_hand():
    counts = {"llm": (1000, 10_000), "connector": (100, 100)}  # 1,100 trainable of 10,100
    bf16 = Precision.from_name("bf16")
    assert state_bytes(counts, bf16, Hardware(gpus_per_node=4, zero_stage=0)) == (20_200, 2_200, 13_200, 0)
    assert state_bytes(counts, bf16, Hardware(gpus_per_node=4, zero_stage=1)) == (20_200, 2_200, 3_300, 0)
    assert state_bytes(counts, bf16, Hardware(gpus_per_node=4, zero_stage=2)) == (20_200, 550, 3_300, 0)
    assert state_bytes(counts, bf16, Hardware(gpus_per_node=4, zero_stage=3)) == (5_050, 550, 3_300, 0)
    assert state_bytes(counts, bf16, Hardware(gpus_per_node=2, nodes=2, zero_stage=3, offload=True)) == (
        0, 550, 0, 3_300 + 5_050)


@pytest.mark.parametrize("recipe", [TINY, SMALL], ids=["tiny", "small"])
def test_meta_counts_equal_real_counts(tiny_components, recipe):
    cfg = resolve_config(recipe=recipe)
    meta, real = build_stack(cfg, meta=True), build_stack(cfg)
    for stack in (meta, real):
        stack.set_trainable(["connector", "llm.layers"])
    assert sum(n for _, n in count_parameters(meta).values()) > 0
    assert count_parameters(meta) == count_parameters(real)


@pytest.mark.parametrize("recipe", [TINY, SMALL], ids=["tiny", "small"])
@pytest.mark.parametrize("stage", ["align", "instruct"])
def test_estimate_within_25_percent_of_measured_step(tiny_components, recipe, stage):
    cfg = resolve_config(recipe=recipe, overrides=[f"run.stage={stage}"])
    plan = make_plan(cfg, Hardware())
    measured = measure_in_subprocess(cfg, plan.micro_batch, plan.seq_len)["step_bytes"]
    estimate = plan.optimizer + plan.step_bytes
    print(f"{stage}: planned {estimate / 2**20:.1f} MiB, measured {measured / 2**20:.1f} MiB")
    assert 0.75 * measured <= estimate <= 1.25 * measured


def test_plan_says_what_would_make_it_fit(tiny_components):
    cfg = resolve_config(recipe=TINY, overrides=["run.stage=instruct"])
    plan = make_plan(cfg, Hardware(gpu_memory=40 * 2**20))
    assert not plan.fits
    labels = {label: fits for label, _, fits in plan.suggestions}
    assert "micro-batch 1 (run.batch_size=1, raise run.grad_accum)" in labels
    assert any("LoRA" in label for label in labels)


def test_plan_cli(tiny_components):
    result = CliRunner().invoke(cli, ["plan", str(TINY), "--gpu-mem", "24GB", "--gpus", "2"])
    assert result.exit_code == 0, result.output
    assert "FITS." in result.output and "connector" in result.output
