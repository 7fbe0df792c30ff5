"""Readers for XM3600, xGQA, MaXM and our own jsonl/tsv, on files in the published layouts."""

from __future__ import annotations

import json

import pytest

from mpm_framework.errors import DataError
from mpm_framework.evaluation.datasets import detect_format, read_eval_set, read_maxm, read_xgqa, read_xm3600


def test_xm3600_reads_one_language_with_its_images(xm3600):
    data = read_xm3600(xm3600 / "captions.jsonl", "en")
    assert len(data) == 3 and data.kind == "caption"
    first = data.examples[0]
    assert first.id == "000411001ff7dd4f" and first.image == xm3600 / "images" / "000411001ff7dd4f.jpg"
    assert first.references == ["A red car parked on a street.", "a car on the road"]
    assert read_xm3600(xm3600, "zh").examples[1].references == ["两只狗在草地上玩耍。"]  # the folder works too


def test_xm3600_unknown_language_names_the_nearest(xm3600):
    with pytest.raises(DataError, match=r"no 'dee' captions\. Did you mean 'de'"):
        read_xm3600(xm3600 / "captions.jsonl", "dee")


def test_missing_images_are_skipped_and_counted(xm3600):
    (xm3600 / "images" / "0006ba4d54a5ad42.jpg").unlink()
    data = read_xm3600(xm3600, "en")
    assert len(data) == 2 and len(data.missing_images) == 1
    with pytest.raises(DataError, match="none of the 3 images"):
        read_xm3600(xm3600, "en", image_root=xm3600)  # wrong folder: nothing found


def test_xgqa_zero_shot_and_few_shot(xgqa):
    data = read_xgqa(xgqa / "data" / "zero_shot", "zh")
    assert [(e.id, e.question, e.answers) for e in data.examples] == [
        ("201307251", "天阴吗？", ["no"]), ("201640614", "谁穿着衬衫？", ["girl"])]
    assert data.examples[0].image.name == "n161313.jpg"
    data = read_xgqa(xgqa / "data" / "few_shot", "en", image_root=xgqa / "images")
    assert [(e.question, e.answers) for e in data.examples] == [("Is it overcast?", ["no"])]


def test_maxm_picks_the_split_of_the_language(maxm, xm3600):
    data = read_maxm(maxm, "zh", image_root=xm3600 / "images")
    assert [e.question for e in data.examples] == ["汽车是什么颜色的？", "有几只狗？"]
    assert data.examples[0].answers == ["红色", "红"]  # answers + processed answers, deduplicated
    assert data.examples[1].image.name == "0006ba4d54a5ad42.jpg"
    with pytest.raises(DataError, match="Splits found: en, zh"):
        read_maxm(maxm, "fr", image_root=xm3600 / "images")
    with pytest.raises(DataError, match="holds MaXM split 'en', not 'zh'"):
        read_maxm(maxm / "maxm_v1_en.json", "zh", image_root=xm3600 / "images")


def test_own_jsonl_questions(own_vqa):
    data = read_eval_set(own_vqa, "en")
    assert data.format == "vqa-jsonl"
    assert [e.scoring for e in data.examples] == ["vqa", "exact", "exact"]
    assert data.examples[2].image is None  # a text-only question


def test_parallel_tsv_with_header(parallel):
    data = read_eval_set(parallel, "de")
    assert data.format == "parallel-tsv" and len(data) == 4
    assert data.examples[1].target == "zwei blaue Quadrate"


def test_format_detection(xm3600, xgqa, maxm, own_vqa, parallel, tmp_path):
    assert detect_format(xm3600 / "captions.jsonl", "en") == "xm3600"
    assert detect_format(xm3600, "en") == "xm3600"
    assert detect_format(xgqa / "data" / "zero_shot" / "testdev_balanced_questions_en.json", "en") == "xgqa"
    assert detect_format(xgqa, "en") == "xgqa"
    assert detect_format(maxm / "maxm_v1_zh.json", "zh") == "maxm"
    assert detect_format(own_vqa, "en") == "vqa-jsonl"
    assert detect_format(parallel, "de") == "parallel-tsv"
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"x": 1}))
    with pytest.raises(DataError, match="pass --format"):
        detect_format(odd, "en")
    with pytest.raises(DataError, match="Did you mean 'xgqa'"):
        read_eval_set(odd, "en", fmt="xgq")
    with pytest.raises(DataError, match="not found"):
        read_eval_set(tmp_path / "nope.jsonl", "en")
