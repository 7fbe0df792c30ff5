"""A decompression bomb inside training data is one skipped record: the pixel
limit of ``mpm_framework.imaging.load_image`` (MPM_MAX_IMAGE_PIXELS) applies to
images given as bytes too, not only to files."""

import io
import json

import pytest
from PIL import Image

from mpm_framework.testing import tiny_chat_stack
from mpm_framework.training import train_stage
from mpm_framework.training.samples import BadSample, Sample, open_image


def _png(size: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("wrap", [lambda b: b, lambda b: {"bytes": b, "path": None}])
def test_image_bytes_over_the_pixel_limit_are_a_skipped_record(monkeypatch, wrap):
    monkeypatch.setenv("MPM_MAX_IMAGE_PIXELS", str(40 * 40))
    sample = Sample(kind="pairs", lang="en", where="shard-0:7", image=wrap(_png(64)), text="a red square")
    with pytest.raises(BadSample) as bad:
        open_image(sample)
    assert bad.value.reason == "corrupt_image"
    assert "shard-0:7" in bad.value.detail and "over the limit of 1,600" in bad.value.detail
    small = Sample(kind="pairs", lang="en", where="shard-0:8", image=wrap(_png(32)), text="a red square")
    assert open_image(small).size == (32, 32)


def test_a_bomb_in_a_training_file_costs_one_record(tmp_path, monkeypatch, helpers, make_cfg):
    monkeypatch.setenv("MPM_MAX_IMAGE_PIXELS", str(40 * 40))  # the helpers' images are 36x36
    helpers.write_images(tmp_path, 8)
    Image.new("RGB", (64, 64)).save(tmp_path / "img3.png")  # over the limit
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in helpers.pair_records(8)) + "\n")
    result = train_stage(tiny_chat_stack(), make_cfg(path, max_steps=2, batch_size=4, save_every=0),
                         progress=False)
    assert result.data["seen"] == 8 and result.data["by_reason"] == {"corrupt_image": 1}
