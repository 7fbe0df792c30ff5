"""report.py regenerates RESULTS.md without dropping what this run did not
measure: the hand-run scripts' marked blocks and, for a partial run (``-k``),
the other suites' summary rows, detail groups and MFU table."""

from __future__ import annotations

import report
from results_blocks import blocks, old_block, write_block


def _bench(name: str, group: str, impl: str, median: float, **info) -> dict:
    return {"name": name, "group": group, "stats": {"median": median, "min": median, "rounds": 3},
            "extra_info": {"impl": impl, **info}}


def _data(*benchmarks: dict, date: str) -> dict:
    return {"machine_info": {}, "datetime": date, "benchmarks": list(benchmarks)}


TRAIN = [_bench("test_train[mpm]", "training step", "mpm", 2.0, key="train/mpm", versus="train/peer",
                ratio="speedup", target=1.3, model_flops=1e9, peak_gflops=67.0),
         _bench("test_train[peer]", "training step", "peer", 3.0, key="train/peer")]


def _generate(ours: float) -> list[dict]:
    return [_bench("test_generate[mpm-8]", "generation, batch 8", "mpm", ours, key="generate-b8/mpm",
                   versus="generate-b8/peer", ratio="speedup", target=1.0),
            _bench("test_generate[peer-8]", "generation, batch 8", "peer", 1.0, key="generate-b8/peer")]


def test_a_partial_run_keeps_the_other_suites_and_the_marked_blocks(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(report.render(_data(*TRAIN, *_generate(1.25), date="2026-11-28T02:00:00"), "## Notes\n"))
    write_block("bench_serve", "## Serving\n\n| clients | tokens/s |\n|---|---|\n| 16 | 38.6 |", path)
    previous = path.read_text()

    text = report.render(_data(*_generate(0.8), date="2026-12-02T03:00:00"), "## Notes\n", previous)
    summary = text.split("## Summary")[1].split("\n## ")[0]
    assert "| generate-b8/mpm | 800.0 ms | generate-b8/peer: 1.00 s | 1.25x throughput" in summary
    assert "0.80x" not in summary  # the earlier run's generation row is replaced
    assert "| train/mpm (earlier run, 2026-11-28T02:00) |" in summary  # not measured now: kept, labelled
    assert "### training step (earlier run, 2026-11-28T02:00)" in text
    assert "## MFU of the training step" in text
    assert text.count("### generation, batch 8") == 1  # measured now: the new group only
    assert list(blocks(text)) == ["bench_serve"] and "| 16 | 38.6 |" in text

    path.write_text(text)  # regenerating again keeps them once, without a second label
    again = report.render(_data(*_generate(0.8), date="2026-12-02T04:00:00"), "## Notes\n", path.read_text())
    assert again.count("train/mpm (earlier run") == 1 and "(earlier run, 2026-11-28T02:00) (earlier" not in again
    assert old_block("bench_serve", path) == "## Serving\n\n| clients | tokens/s |\n|---|---|\n| 16 | 38.6 |"
