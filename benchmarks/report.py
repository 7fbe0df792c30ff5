"""Turn pytest-benchmark JSON into RESULTS.md: each figure beside its peer."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def _fmt_seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def render(data: dict) -> str:
    machine = data.get("machine_info", {})
    lines = ["# Benchmark results", "",
             f"- machine: {machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
             f"{machine.get('cpu', {}).get('count', '?')} cores, {machine.get('system', '')} "
             f"{machine.get('release', '')}",
             f"- python {machine.get('python_version', '?')}; date {data.get('datetime', '?')}"]
    versions = {}
    for bench in data["benchmarks"]:
        versions.update(bench.get("extra_info", {}).get("versions", {}))
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    lines.append("")
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench["group"] or bench["name"]].append(bench)
    for group, benches in groups.items():
        lines += [f"## {group}", "", "| benchmark | impl | median | rounds | ratio to peer | notes |",
                  "|---|---|---|---|---|---|"]
        peers = [b for b in benches if b.get("extra_info", {}).get("impl") == "peer"]
        peer_median = min((b["stats"]["median"] for b in peers), default=None)
        for b in sorted(benches, key=lambda b: b["name"]):
            info = b.get("extra_info", {})
            median = b["stats"]["median"]
            ratio = "" if peer_median is None or info.get("impl") == "peer" else f"{median / peer_median:.3f}x time"
            if info.get("ratio"):
                ratio = info["ratio"]
            notes = "; ".join(f"{k}={v}" for k, v in info.items() if k not in ("impl", "versions", "ratio"))
            lines.append(f"| {b['name']} | {info.get('impl', '')} | {_fmt_seconds(median)} | "
                         f"{b['stats']['rounds']} | {ratio} | {notes} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(render(data))


if __name__ == "__main__":
    main()
