"""The exported model's ``README.md``: Hugging Face model-card metadata
(``huggingface_hub.ModelCard``) from what the run folder records.

Languages come from the stack's language packs, base models from the
components' checkpoint paths (and the import's source), datasets and stages
from the config and ``run.json``, the evaluation table from MPM evaluation
reports found in the run (``eval/*.json``) or passed in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MPM_CITATION = """@article{hu2023large,
  title   = {Large Multilingual Models Pivot Zero-Shot Multimodal Learning across Languages},
  author  = {Hu, Jinyi and Yao, Yuan and Wang, Chongyi and Wang, Shan and Pan, Yinxu and Chen, Qianyu and
             Yu, Tianyu and Wu, Hanghao and Zhao, Yue and Zhang, Haoye and Han, Xu and Lin, Yankai and
             Xue, Jiao and Li, Dahai and Liu, Zhiyuan and Sun, Maosong},
  journal = {arXiv preprint arXiv:2308.12038},
  year    = {2023}
}"""


def _hub_like(value: str) -> bool:
    return bool(value) and not value.startswith(("/", ".", "~")) and value.count("/") == 1


def base_models(cfg: Any, run_dir: Path) -> list[str]:
    """Hub ids (or folder names) of the checkpoints the stack started from."""
    found: list[str] = []
    index = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    for stage in index.get("stages", []):
        source = stage.get("imported_from")
        if source:
            found.append(source if _hub_like(source) else Path(source).name)
    for kind in ("llm", "vision", "decoder"):
        node = cfg.model.get(kind)
        path = str(node.get("path") or "") if node is not None else ""
        if _hub_like(path):
            found.append(path)
    return list(dict.fromkeys(found))


def datasets(cfg: Any) -> list[str]:
    out = []
    for source in list(cfg.data.get("train", []) or []):
        path = str(source.get("path", ""))
        if path:
            out.append(path if _hub_like(path) or source.get("format") == "hub" else Path(path).name)
    return list(dict.fromkeys(out))


def eval_reports(run_dir: Path, extra: list[Path] = ()) -> list[dict[str, Any]]:
    files = [*sorted(run_dir.glob("eval/*.json")), *sorted(run_dir.glob("*/eval/*.json")), *extra]
    reports = []
    for f in files:
        try:
            data = json.loads(Path(f).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "task" in data and isinstance(data.get("languages"), dict):
            reports.append(data)
    return reports


def eval_table(reports: list[dict[str, Any]]) -> str:
    rows = []
    for report in reports:
        for lang, entry in report["languages"].items():
            for metric, value in (entry.get("metrics") or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    rows.append(f"| {report['task']} | {lang} | {metric} | {value:.4g} |")
    if not rows:
        return ""
    return "| task | language | metric | value |\n|---|---|---|---|\n" + "\n".join(rows)


def write_model_card(out: Path, run_dir: Path, cfg: Any, *, title: str, architecture: str,
                     reports: list[Path] = (), notes: list[str] = ()) -> Path:
    from huggingface_hub import ModelCard, ModelCardData

    languages = [str(code) for code in cfg.model.get("languages", [])] or ["en"]
    bases = base_models(cfg, run_dir)
    data = datasets(cfg)
    index = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    stages = index.get("stages", [])
    card_data = ModelCardData(
        language=languages, license=None, library_name="transformers", pipeline_tag="image-text-to-text",
        base_model=bases or None, datasets=data or None, tags=["mpm", "multilingual", "llava", "image-text-to-text"],
    )
    lines = [f"# {title}", "", f"{architecture}, trained and exported with MPM (multilingual multimodal "
             "pivoting: a multilingual LLM carries English image-text training to other languages).", "",
             "## Languages", "", ", ".join(languages), ""]
    if bases:
        lines += ["## Base models", "", *[f"- {b}" for b in bases], ""]
    if data:
        lines += ["## Training data", "", *[f"- {d}" for d in data], ""]
    if stages:
        lines += ["## Stages", "", "| stage | steps | final loss | note |", "|---|---|---|---|"]
        for s in stages:
            loss = s.get("final_loss")
            note = f"imported from {s.get('format')}" if s.get("imported_from") else ""
            lines.append(f"| {s.get('stage')} | {s.get('steps', '')} | "
                         f"{'' if loss is None else f'{loss:.4g}'} | {note} |")
        lines.append("")
    table = eval_table(eval_reports(run_dir, list(reports)))
    if table:
        lines += ["## Evaluation", "", table, ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    lines += ["## Usage", "", "```python", "from transformers import AutoProcessor, LlavaForConditionalGeneration",
              "model = LlavaForConditionalGeneration.from_pretrained(PATH)",
              "processor = AutoProcessor.from_pretrained(PATH)", "```", "",
              "## Citation", "", "```bibtex", MPM_CITATION, "```", ""]
    card = ModelCard.from_template(card_data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines))
    path = out / "README.md"
    card.save(str(path))
    return path
