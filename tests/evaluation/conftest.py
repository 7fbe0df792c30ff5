"""Small evaluation sets written in each published format (XM3600, xGQA, MaXM) and ours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

KEYS = ["000411001ff7dd4f", "0006ba4d54a5ad42", "0013ea2087020901"]


def _images(folder: Path, names: list[str], suffix: str = ".jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"{name}{suffix}")


@pytest.fixture
def xm3600(tmp_path) -> Path:
    """XM3600 layout: captions.jsonl (one image per line, every language a key) + images/<key>.jpg."""
    root = tmp_path / "xm3600"
    _images(root / "images", KEYS)
    captions = {
        "en": [["A red car parked on a street.", "a car on the road"], ["Two dogs playing in the grass."],
               ["A plate of food on a table.", "food on a white plate"]],
        "zh": [["一辆红色的汽车停在街上。"], ["两只狗在草地上玩耍。"], ["桌子上有一盘食物。"]],
        "de": [["Ein rotes Auto auf der Straße."], ["Zwei Hunde spielen im Gras."], ["Ein Teller mit Essen."]],
    }
    with (root / "captions.jsonl").open("w", encoding="utf-8") as f:
        for i, key in enumerate(KEYS):
            row = {"image/key": key}
            for lang, caps in captions.items():
                row[lang] = {"caption": caps[i], "caption/tokenized": caps[i],
                             "caption/tokenized/lowercase": [c.lower() for c in caps[i]]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return root


@pytest.fixture
def xgqa(tmp_path) -> Path:
    """xGQA zero-shot layout: data/zero_shot/testdev_balanced_questions_<lang>.json (GQA format)
    plus GQA images, and a few-shot split (list rows)."""
    root = tmp_path / "xgqa"
    _images(root / "images", ["n161313", "n235859"])
    questions = {
        "en": {"201307251": {"imageId": "n161313", "question": "Is it overcast?", "answer": "no",
                             "fullAnswer": "No, it is clear.", "isBalanced": True},
               "201640614": {"imageId": "n235859", "question": "Who is wearing a shirt?", "answer": "girl",
                             "fullAnswer": "The girl is wearing a shirt."}},
        "zh": {"201307251": {"imageId": "n161313", "question": "天阴吗？", "answer": "no"},
               "201640614": {"imageId": "n235859", "question": "谁穿着衬衫？", "answer": "girl"}},
    }
    zero = root / "data" / "zero_shot"
    zero.mkdir(parents=True)
    for lang, qs in questions.items():
        (zero / f"testdev_balanced_questions_{lang}.json").write_text(json.dumps(qs, ensure_ascii=False))
    few = root / "data" / "few_shot" / "en"
    few.mkdir(parents=True)
    (few / "test.json").write_text(json.dumps([
        {"img_id": "n161313", "label": {"no": 1.0}, "question_id": "201307251", "sent": "Is it overcast?"},
    ]))
    return root


@pytest.fixture
def maxm(tmp_path, xm3600) -> Path:
    """MaXM release layout: one JSON per language split; images are XM3600's."""
    root = tmp_path / "maxm"
    root.mkdir()
    for lang, qas in {
        "en": [("What color is the car?", ["red"], ["red"]), ("How many dogs are there?", ["2", "two"], ["2"])],
        "zh": [("汽车是什么颜色的？", ["红色", "红"], ["红色"]), ("有几只狗？", ["两只", "2"], ["2"])],
    }.items():
        release = {"dataset": "maxm", "version": "v1", "split": lang, "annotations": [
            {"image_id": KEYS[i], "image_url": f"https://example.invalid/{KEYS[i]}.jpg", "qa_pairs": [
                {"question_id": f"{lang}-{i}", "question": q, "answers": a, "processed_answers": p,
                 "is_collection": False}]}
            for i, (q, a, p) in enumerate(qas)]}
        (root / f"maxm_v1_{lang}.json").write_text(json.dumps(release, ensure_ascii=False))
    return root


@pytest.fixture
def own_vqa(tmp_path) -> Path:
    root = tmp_path / "own"
    _images(root, ["a", "b"], ".png")
    rows = [{"image": "a.png", "question": "What color is it?", "answers": ["red"] * 6 + ["blue"] * 4},
            {"image": "b.png", "question": "Is it big?", "answer": "yes"},
            {"question": "What is two plus two?", "answer": "four"}]
    path = root / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture
def parallel(tmp_path) -> Path:
    pairs = [("the red circle is on the left", "der rote Kreis ist links"),
             ("two blue squares", "zwei blaue Quadrate"),
             ("a small yellow triangle at the top", "ein kleines gelbes Dreieck oben"),
             ("there is one green shape", "es gibt eine grüne Form")]
    path = tmp_path / "pairs.tsv"
    path.write_text("en\tde\n" + "\n".join(f"{a}\t{b}" for a, b in pairs) + "\n", encoding="utf-8")
    return path
