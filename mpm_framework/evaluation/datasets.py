"""Readers for evaluation sets in their published formats, from local files.

- **XM3600** (Crossmodal-3600, captions in 36 languages): ``captions.jsonl``,
  one image per line: ``{"image/key": "<hex id>", "<lang>": {"caption": [...],
  "caption/tokenized": [...], ...}, ...}``; images are ``images/<key>.jpg``.
- **xGQA** (GQA test-dev translated into 7 languages): the zero-shot files
  ``testdev_balanced_questions_<lang>.json`` in GQA's format ``{question_id:
  {"imageId": ..., "question": ..., "answer": ..., ...}}``, and the few-shot
  splits (a list of ``{"img_id", "sent", "label": {answer: score}, "question_id"}``);
  images are GQA's ``images/<imageId>.jpg``.
- **MaXM** (7 languages, on XM3600 images): ``{"dataset", "version", "split":
  <lang>, "annotations": [{"image_id", "image_url", "qa_pairs": [{"question_id",
  "question", "answers", "processed_answers", "is_collection"}]}]}``.
- Plain jsonl for one's own data: captions ``{"image", "captions"|"caption"}``,
  questions ``{"image", "question", "answers"|"answer"}``; parallel sentences
  ``{"en": ..., "<lang>": ...}`` (jsonl) or two tab-separated columns.

``path`` may name the file or the folder it came in (the reader then looks
for the file of the asked language). Images are looked up in ``image_root``,
else in the nearest ``images`` folder beside the annotation file or up to three
levels above it; missing images are counted and skipped, never fatal, unless
none is found.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, did_you_mean

CAPTION_FORMATS = ("xm3600", "caption-jsonl")
VQA_FORMATS = ("xgqa", "maxm", "vqa-jsonl")
PARALLEL_FORMATS = ("parallel-jsonl", "parallel-tsv")
FORMATS = ("auto", *CAPTION_FORMATS, *VQA_FORMATS, *PARALLEL_FORMATS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass
class CaptionExample:
    id: str
    image: Path
    references: list[str]


@dataclass
class VQAExample:
    id: str
    image: Path | None
    question: str
    answers: list[str]
    # "exact": match any listed answer (xGQA, MaXM); "vqa": VQAv2 consensus over human answers
    scoring: str = "exact"


@dataclass
class ParallelPair:
    en: str
    target: str


@dataclass
class EvalSet:
    """Examples of one language read from one source, with what was skipped."""

    format: str
    lang: str
    path: Path
    examples: list[Any] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.format in CAPTION_FORMATS:
            return "caption"
        if self.format in VQA_FORMATS:
            return "vqa"
        return "parallel"

    def __len__(self) -> int:
        return len(self.examples)


# -- helpers -------------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number} is not valid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number} must hold a JSON object")
            rows.append(row)
    return rows


def _image_path(root: Path, key: str) -> Path:
    """``root/key`` as given when it has a suffix, else the first existing ``key.<suffix>``."""
    candidate = root / key
    if candidate.suffix.lower() in IMAGE_SUFFIXES:
        return candidate
    for suffix in IMAGE_SUFFIXES:
        path = root / f"{key}{suffix}"
        if path.exists():
            return path
    return root / f"{key}.jpg"


def _image_root(annotation: Path, image_root: str | Path | None) -> Path:
    if image_root is not None:
        root = Path(image_root)
        if not root.is_dir():
            raise DataError(f"image folder not found: {root}")
        return root
    # the nearest "images" folder at or above the annotation file (xGQA keeps its
    # files in data/zero_shot/ while images sit at the top)
    for folder in [annotation.parent, *annotation.parent.parents][:4]:
        if (folder / "images").is_dir():
            return folder / "images"
    return annotation.parent / "images"


def _keep_existing(data: EvalSet) -> EvalSet:
    kept = []
    for example in data.examples:
        image = getattr(example, "image", None)
        if image is not None and not Path(image).is_file():
            data.missing_images.append(str(image))
        else:
            kept.append(example)
    if data.examples and not kept:
        first = data.missing_images[0]
        raise DataError(f"none of the {len(data.missing_images)} images of {data.path} was found "
                        f"(first expected at {first}); pass the image folder with --images")
    data.examples = kept
    return data


def _pick_file(path: Path, lang: str, patterns: Iterable[str]) -> Path:
    """In a folder, the file for ``lang`` among ``patterns`` (searched recursively)."""
    if path.is_file():
        return path
    if not path.exists():
        raise DataError(f"evaluation data not found: {path}")
    for pattern in patterns:
        hits = sorted(path.rglob(pattern.format(lang=lang)))
        if hits:
            return hits[0]
    raise DataError(f"no file for language '{lang}' in {path} (looked for {', '.join(p.format(lang=lang) for p in patterns)})")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# -- XM3600 ----------------------------------------------------------------------------


def read_xm3600(path: str | Path, lang: str, image_root: str | Path | None = None) -> EvalSet:
    """Captions of one language from XM3600's ``captions.jsonl``."""
    file = _pick_file(Path(path), lang, ["captions.jsonl", "*.jsonl"])
    rows = _load_jsonl(file)
    root = _image_root(file, image_root)
    data = EvalSet("xm3600", lang, file)
    seen_langs: set[str] = set()
    for number, row in enumerate(rows, 1):
        key = row.get("image/key")
        if key is None:
            raise DataError(f"{file}:{number} has no 'image/key': is this XM3600's captions.jsonl?")
        seen_langs.update(k for k, v in row.items() if isinstance(v, dict) and "caption" in v)
        entry = row.get(lang)
        if not isinstance(entry, dict) or not _as_list(entry.get("caption")):
            continue
        data.examples.append(CaptionExample(str(key), _image_path(root, str(key)), _as_list(entry["caption"])))
    if not data.examples:
        langs = sorted(seen_langs)
        raise DataError(f"{file} has no '{lang}' captions.{did_you_mean(lang, langs)} "
                        f"Languages in the file: {', '.join(langs) or 'none'}")
    return _keep_existing(data)


# -- xGQA ------------------------------------------------------------------------------


def read_xgqa(path: str | Path, lang: str, image_root: str | Path | None = None) -> EvalSet:
    """xGQA questions of one language (zero-shot test-dev or a few-shot split)."""
    file = _pick_file(Path(path), lang, [
        "testdev_balanced_questions_{lang}.json", "{lang}/test.json", "*_{lang}.json",
    ])
    raw = _load_json(file)
    root = _image_root(file, image_root)
    data = EvalSet("xgqa", lang, file)
    if isinstance(raw, dict):  # GQA format
        for qid, q in raw.items():
            if not isinstance(q, dict) or "imageId" not in q or "question" not in q:
                raise DataError(f"{file}: question {qid!r} lacks 'imageId'/'question' (GQA format expected)")
            data.examples.append(VQAExample(str(qid), _image_path(root, str(q["imageId"])), q["question"],
                                            _as_list(q.get("answer"))))
    elif isinstance(raw, list):  # few-shot splits (LXMERT-style rows)
        for i, q in enumerate(raw):
            if not isinstance(q, dict) or "img_id" not in q or "sent" not in q:
                raise DataError(f"{file}: row {i} lacks 'img_id'/'sent' (xGQA few-shot format expected)")
            label = q.get("label") or {}
            answers = list(label) if isinstance(label, dict) else _as_list(label)
            data.examples.append(VQAExample(str(q.get("question_id", i)), _image_path(root, str(q["img_id"])),
                                            q["sent"], answers))
    else:
        raise DataError(f"{file}: expected a GQA question dictionary or a list of questions")
    return _keep_existing(data)


# -- MaXM ------------------------------------------------------------------------------


def read_maxm(path: str | Path, lang: str, image_root: str | Path | None = None) -> EvalSet:
    """MaXM questions of one language (its release JSON; images are XM3600's)."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.rglob("*.json"))
        file = next((f for f in candidates if _maxm_split(f) == lang), None)
        if file is None:
            splits = sorted({s for s in map(_maxm_split, candidates) if s})
            raise DataError(f"no MaXM file for '{lang}' in {path}.{did_you_mean(lang, splits)} "
                            f"Splits found: {', '.join(splits) or 'none'}")
    else:
        file = _pick_file(path, lang, [])
    raw = _load_json(file)
    if not isinstance(raw, dict) or "annotations" not in raw:
        raise DataError(f"{file}: expected MaXM's {{'split', 'annotations': [...]}} layout")
    split = str(raw.get("split", lang))
    if split != lang:
        raise DataError(f"{file} holds MaXM split '{split}', not '{lang}'")
    root = _image_root(file, image_root)
    data = EvalSet("maxm", lang, file)
    for item in raw["annotations"]:
        image = _image_path(root, str(item["image_id"]))
        for qa in item.get("qa_pairs", []):
            answers = _as_list(qa.get("answers")) + _as_list(qa.get("processed_answers"))
            data.examples.append(VQAExample(str(qa["question_id"]), image, qa["question"],
                                            list(dict.fromkeys(answers))))
    return _keep_existing(data)


def _maxm_split(file: Path) -> str | None:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return str(raw.get("split")) if isinstance(raw, dict) and "annotations" in raw else None


# -- plain jsonl -----------------------------------------------------------------------


def read_caption_jsonl(path: str | Path, lang: str, image_root: str | Path | None = None) -> EvalSet:
    file = _pick_file(Path(path), lang, [])
    root = Path(image_root) if image_root is not None else file.parent
    data = EvalSet("caption-jsonl", lang, file)
    for i, row in enumerate(_load_jsonl(file)):
        if row.get("lang", lang) != lang:
            continue
        refs = _as_list(row.get("captions", row.get("caption")))
        if "image" not in row or not refs:
            raise DataError(f"{file}: line {i + 1} needs 'image' and 'captions' (or 'caption')")
        data.examples.append(CaptionExample(str(row.get("id", i)), root / row["image"], refs))
    return _keep_existing(data)


def read_vqa_jsonl(path: str | Path, lang: str, image_root: str | Path | None = None) -> EvalSet:
    """Questions with ``answers`` or one ``answer``. Three or more answers are taken
    as human votes (VQAv2 lists ten) and scored by VQA consensus; fewer by exact match."""
    file = _pick_file(Path(path), lang, [])
    root = Path(image_root) if image_root is not None else file.parent
    data = EvalSet("vqa-jsonl", lang, file)
    for i, row in enumerate(_load_jsonl(file)):
        if row.get("lang", lang) != lang:
            continue
        if "question" not in row:
            raise DataError(f"{file}: line {i + 1} needs a 'question'")
        answers = _as_list(row.get("answers", row.get("answer")))
        scoring = "vqa" if len(answers) >= 3 else "exact"
        image = root / row["image"] if row.get("image") else None
        data.examples.append(VQAExample(str(row.get("id", i)), image, row["question"], answers, scoring))
    return _keep_existing(data)


def read_parallel(path: str | Path, lang: str) -> EvalSet:
    """English/target sentence pairs from jsonl (``{"en", "<lang>"}``) or a two-column TSV."""
    file = _pick_file(Path(path), lang, [])
    pairs: list[ParallelPair] = []
    if file.suffix.lower() in (".tsv", ".txt"):
        with file.open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.reader(f, delimiter="\t")):
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) < 2:
                    raise DataError(f"{file}: line {i + 1} needs two tab-separated columns (English, {lang})")
                if i == 0 and row[0].strip().lower() in ("en", "english") and row[1].strip().lower() == lang:
                    continue  # a header
                pairs.append(ParallelPair(row[0].strip(), row[1].strip()))
        fmt = "parallel-tsv"
    else:
        for i, row in enumerate(_load_jsonl(file)):
            if "en" not in row or lang not in row:
                keys = [k for k in row if k != "en"]
                raise DataError(f"{file}: line {i + 1} needs 'en' and '{lang}'.{did_you_mean(lang, keys)}")
            pairs.append(ParallelPair(str(row["en"]), str(row[lang])))
        fmt = "parallel-jsonl"
    if len(pairs) < 2:
        raise DataError(f"{file}: the alignment probe needs at least 2 sentence pairs, found {len(pairs)}")
    return EvalSet(fmt, lang, file, pairs)


# -- dispatch --------------------------------------------------------------------------

READERS = {
    "xm3600": read_xm3600,
    "caption-jsonl": read_caption_jsonl,
    "xgqa": read_xgqa,
    "maxm": read_maxm,
    "vqa-jsonl": read_vqa_jsonl,
}


def detect_format(path: str | Path, lang: str) -> str:
    """The format of an annotation file or folder, from its content."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"evaluation data not found: {p}")
    if p.is_dir():
        if list(p.rglob("testdev_balanced_questions_*.json")):
            return "xgqa"
        if any(_maxm_split(f) for f in p.rglob("*.json")):
            return "maxm"
        if list(p.rglob("captions.jsonl")):
            return "xm3600"
        raise DataError(f"cannot tell the format of folder {p}; pass --format ({', '.join(FORMATS[1:])})")
    if p.suffix.lower() in (".tsv", ".txt"):
        return "parallel-tsv"
    if p.suffix.lower() == ".jsonl":
        rows = _load_jsonl(p)[:1]
        first = rows[0] if rows else {}
        if "image/key" in first:
            return "xm3600"
        if "question" in first:
            return "vqa-jsonl"
        if "captions" in first or "caption" in first:
            return "caption-jsonl"
        if "en" in first:
            return "parallel-jsonl"
    elif p.suffix.lower() == ".json":
        raw = _load_json(p)
        if isinstance(raw, dict) and "annotations" in raw:
            return "maxm"
        if isinstance(raw, dict) and all(isinstance(v, dict) and "imageId" in v for v in list(raw.values())[:5]):
            return "xgqa"
        if isinstance(raw, list) and raw and isinstance(raw[0], dict) and "img_id" in raw[0]:
            return "xgqa"
    raise DataError(f"cannot tell the format of {p}; pass --format ({', '.join(FORMATS[1:])})")


def read_eval_set(path: str | Path, lang: str, fmt: str = "auto", image_root: str | Path | None = None) -> EvalSet:
    """Read one language's examples in any supported format."""
    if fmt not in FORMATS:
        raise DataError(f"unknown data format '{fmt}'.{did_you_mean(fmt, FORMATS)} Formats: {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path, lang)
    if fmt in PARALLEL_FORMATS:
        return read_parallel(path, lang)
    return READERS[fmt](path, lang, image_root)
