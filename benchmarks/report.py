"""Turn pytest-benchmark JSON into RESULTS.md: each figure beside its peer.

    python benchmarks/report.py results.json RESULTS.md [notes.md]

An existing RESULTS.md is read first: its marked blocks (``results_blocks``:
the serving, load-memory, int8, toy-accuracy tables of the hand-run scripts)
are kept, and so are the figures of suites this run did not measure (a run
with ``-k``): their summary rows, detail groups and MFU table, labelled with
the date of the run they come from.

Headline figures come from the benchmarks' ``extra_info`` (see conftest.py):
``versus`` names the benchmark compared with, ``ratio`` how (``speedup``: the
other's time per unit / ours, higher is better; ``time``: ours / the other's,
lower is better), ``target`` the goal. Training benchmarks carrying
``model_flops`` and ``peak_gflops`` also get an MFU. ``notes.md`` (what was
tried, what would help) is appended verbatim.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_blocks, beside this file

from results_blocks import blocks


def _fmt_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _median(bench: dict) -> float:
    return bench["stats"]["median"]


def _info(bench: dict) -> dict:
    return bench.get("extra_info", {})


def _header(data: dict) -> list[str]:
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {})
    versions: dict[str, str] = {}
    sizes, devices = set(), set()
    for bench in data["benchmarks"]:
        info = _info(bench)
        versions.update(info.get("versions", {}))
        sizes.add(info.get("size", "?"))
        devices.add(info.get("device", "cpu"))
    lines = ["# Benchmark results", "",
             f"- machine: {cpu.get('brand_raw', machine.get('processor', '?'))}, {cpu.get('count', '?')} cores, "
             f"{machine.get('system', '')} {machine.get('release', '')}"]
    if versions.get("gpu"):
        lines.append(f"- GPU: {versions['gpu']} (CUDA {versions.get('cuda', '?')})")
    lines.append(f"- python {machine.get('python_version', '?')}; date {data.get('datetime', '?')}")
    shown = {k: v for k, v in versions.items() if k not in ("gpu", "cuda", "python")}
    if shown:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(shown.items())))
    lines.append(f"- model sizes: {', '.join(sorted(sizes))}; device: {', '.join(sorted(devices))}")
    lines.append("")
    return lines


def _ratio(bench: dict, ref: dict, stat: str = "median") -> float:
    info, ref_info = _info(bench), _info(ref)
    ours = bench["stats"][stat] / float(info.get("units", 1))
    theirs = ref["stats"][stat] / float(ref_info.get("units", 1))
    return theirs / ours if info.get("ratio", "speedup") == "speedup" else ours / theirs


def _met(value: float, target: float | None, higher_is_better: bool) -> str:
    if target is None:
        return ""
    ok = value >= target if higher_is_better else value <= target
    return "yes" if ok else "**no**"


def summary(data: dict, carried: list[str] | None = None) -> list[str]:
    """The headline table; ``carried``: rows of an earlier run (figures not measured now)."""
    by_key = {_info(b)["key"]: b for b in data["benchmarks"] if "key" in _info(b)}
    rows = []
    for bench in data["benchmarks"]:
        info = _info(bench)
        if "versus" not in info:
            continue
        ref = by_key.get(info["versus"])
        kind = info.get("ratio", "speedup")
        target = info.get("target")
        unit = "x throughput" if kind == "speedup" else "x time"
        if ref is None:
            rows.append(f"| {info['key']} | {_fmt_seconds(_median(bench))} | {info['versus']}: not measured in "
                        f"this run | | | {target} | |")
            continue
        value, best = _ratio(bench, ref), _ratio(bench, ref, "min")
        sign = ">=" if kind == "speedup" else "<="
        label = info.get("versus_label", info["versus"])
        rows.append(f"| {info['key']} | {_fmt_seconds(_median(bench))} | {label}: {_fmt_seconds(_median(ref))} | "
                    f"{value:.2f}{unit} | {best:.2f}{unit} | {sign} {target} | "
                    f"{_met(value, target, kind == 'speedup')} |")
    rows += carried or []
    if not rows:
        return []
    return ["## Summary: ours against the peer (same run)", "",
            "Ratios of medians (per sample where the amounts of work differ); `met` is judged on them. "
            "The ratio of minima is shown beside them: where the two disagree, the machine's load "
            "changed during the run and neither is precise.", "",
            "| figure | ours (median) | compared with (median) | ratio (medians) | ratio (minima) | target | met |",
            "|---|---|---|---|---|---|---|", *rows, ""]


def run_peak(data: dict) -> float:
    """The best ``torch.mm`` GFLOP/s measured anywhere in the run (before the
    training suite and after each of its benchmarks): the machine's limit."""
    values = [float(_info(b)[k]) for b in data["benchmarks"] for k in ("peak_gflops", "peak_gflops_after")
              if _info(b).get(k)]
    return max(values, default=0.0)


def mfu_table(data: dict) -> list[str]:
    rows = []
    best_peak = run_peak(data)
    for bench in data["benchmarks"]:
        info = _info(bench)
        if "model_flops" not in info or not best_peak:
            continue
        peak = best_peak * 1e9
        achieved = info["model_flops"] / _median(bench)
        mfu = achieved / peak
        planner = info.get("planner_flops")
        planner_mfu = f"{planner / _median(bench) / peak:.1%}" if planner else ""
        target = info.get("mfu_target")
        rows.append(f"| {info.get('key', bench['name'])} | {info['model_flops'] / 1e9:.1f} | "
                    f"{_fmt_seconds(_median(bench))} | {achieved / 1e9:.1f} | {best_peak:.1f} | "
                    f"{mfu:.1%} | {planner_mfu} | {'' if target is None else f'>= {target:.0%}'} | "
                    f"{_met(mfu, target, True)} |")
    if not rows:
        return []
    return ["## MFU of the training step", "",
            "Model FLOPs: matmuls and attention of the step's samples without padding, forward and "
            "backward, only the work the loss needs (LM head on label tokens, no weight gradients of "
            "the frozen LLM), the same count for ours and the peer. Peak: the best `torch.mm` "
            "throughput measured in the same process (before the training benchmarks and after each). The planner's column uses `planning.estimate.flops_per_step` for the "
            "padded batch instead.", "",
            "| benchmark | model GFLOP | step (median) | achieved GFLOP/s | peak GFLOP/s | MFU | "
            "MFU (planner's FLOPs) | target | met |",
            "|---|---|---|---|---|---|---|---|---|", *rows, ""]


def details(data: dict) -> list[str]:
    lines = ["## All measurements", ""]
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench["group"] or bench["name"]].append(bench)
    skip = {"impl", "versions", "ratio", "key", "versus", "target", "size", "device", "model_flops",
            "planner_flops", "peak_gflops", "peak_gflops_after", "mfu_target", "versus_label"}
    for group, benches in groups.items():
        lines += [f"### {group}", "", "| benchmark | impl | median | min | rounds | ratio to peer | notes |",
                  "|---|---|---|---|---|---|---|"]
        peers = [b for b in benches if _info(b).get("impl") == "peer"]
        peer_median = min((_median(b) for b in peers), default=None)
        for b in sorted(benches, key=lambda b: b["name"]):
            info = _info(b)
            ratio = ""
            if peer_median is not None and info.get("impl") != "peer":
                ratio = f"{peer_median / _median(b):.2f}x throughput"
            notes = "; ".join(f"{k}={v}" for k, v in info.items() if k not in skip)
            lines.append(f"| {b['name']} | {info.get('impl', '')} | {_fmt_seconds(_median(b))} | "
                         f"{_fmt_seconds(b['stats']['min'])} | {b['stats']['rounds']} | {ratio} | {notes} |")
        lines.append("")
    return lines


def _section(text: str, title: str) -> str:
    """The body of the ``## title`` section of ``text`` ('' when absent)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |^<!-- |\Z)", text, re.S | re.M)
    return match.group(1) if match else ""


def _earlier(previous: str) -> str:
    found = re.search(r"; date (\S+)", previous)
    return f"(earlier run, {found.group(1)[:16]})" if found else "(earlier run)"


def carried_over(previous: str, data: dict) -> tuple[list[str], list[str], list[str]]:
    """From the previous RESULTS.md, what this run did not measure again: summary
    rows (by figure), detail groups (by title) and the MFU section."""
    label = _earlier(previous)
    keys = {_info(b)["key"] for b in data["benchmarks"] if "key" in _info(b)}
    groups = {b["group"] or b["name"] for b in data["benchmarks"]}
    rows = []
    for line in _section(previous, "Summary: ours against the peer (same run)").splitlines():
        cells = line.split("|")
        if not line.startswith("| ") or len(cells) < 3 or cells[1].strip() in ("figure", ""):
            continue
        key = cells[1].strip().split(" (earlier run")[0]
        if key not in keys:
            cells[1] = f" {cells[1].strip() if '(earlier run' in cells[1] else f'{key} {label}'} "
            rows.append("|".join(cells))
    kept_groups = []
    for part in re.split(r"^### ", _section(previous, "All measurements"), flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        if title.split(" (earlier run")[0].strip() not in groups:
            heading = title if "(earlier run" in title else f"{title} {label}"
            kept_groups.append(f"### {heading}\n{body.rstrip()}\n")
    mfu = []
    if not any("model_flops" in _info(b) for b in data["benchmarks"]):
        body = _section(previous, "MFU of the training step").strip()
        if body:
            mfu = ["## MFU of the training step", "", body if "(earlier run" in body else f"{label}\n\n{body}", ""]
    return rows, kept_groups, mfu


def render(data: dict, notes: str | None = None, previous: str | None = None) -> str:
    rows, groups, mfu = carried_over(previous, data) if previous else ([], [], [])
    top = summary(data, rows)
    lines = _header(data) + top + (mfu_table(data) or mfu) + details(data) + groups
    if notes:
        lines += [notes.rstrip(), ""]
    if previous:
        kept = blocks(previous)
        lines += [block + "\n" for block in kept.values()]
    return "\n".join(lines)


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    notes = Path(sys.argv[3]).read_text() if len(sys.argv) > 3 and Path(sys.argv[3]).is_file() else None
    out = Path(sys.argv[2])
    previous = out.read_text(encoding="utf-8") if out.is_file() else None
    out.write_text(render(data, notes, previous))


if __name__ == "__main__":
    main()
