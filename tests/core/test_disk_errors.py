"""Issue 16 item 7: a full disk or a read-only run folder is a clear error
naming the path and the free space; the last complete checkpoint stays
loadable and the run resumes from it once there is room.

The disk is a real, small tmpfs (needs root and mount rights; skipped otherwise),
so every write path -- checkpoint tensors, RNG state, trainer state, metrics,
the loss-curve plot -- meets a genuine ENOSPC / EROFS wherever it happens to fall.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from mpm_framework.cli.main import cli
from mpm_framework.storage import StorageError, writing
from mpm_framework.training.checkpoint import latest_checkpoint


def _mount(target, *options: str) -> bool:
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
                            capture_output=True, text=True)
    return result.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB file system at tmp_path/disk; yields a function that remounts it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount(disk, "size=256k", f"uid={os.getuid()}"):
        pytest.skip("mount -t tmpfs is not permitted here")

    def remount(*options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(disk)], check=True)

    try:
        yield disk, remount
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _data(folder):
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (32, 32), (30 * i, 200 - 20 * i, 90)).save(folder / f"img{i}.png")
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps({"image": f"img{i}.png", "text": f"a square number {i}"}) + "\n"
                            for i in range(8)))
    return path


def _train(out, pairs, *extra):
    return CliRunner().invoke(cli, [
        "compose", "--llm", "tiny-llm", "--vision", "tiny-vision",
        f"run.output_dir={out}", f"data.train=[{{path: {pairs}}}]", "run.batch_size=2", "run.save_every=1",
        "run.keep_last=0", "run.max_steps=12", "run.log_every=1000", "train", "--no-progress", *extra])


@pytest.mark.slow  # trains a tiny stack twice (~20 s on a loaded 2-core machine)
def test_full_disk_names_the_path_and_keeps_the_last_checkpoint(tiny_components, tmp_path, small_disk):
    disk, remount = small_disk
    pairs = _data(tmp_path / "data")
    out = disk / "run"
    full = _train(out, pairs)
    assert full.exit_code == 1, full.output
    assert isinstance(full.exception, SystemExit), repr(full.exception)  # a ClickException, not a crash
    assert "Traceback" not in full.output
    error = next(line for line in full.output.splitlines() if line.startswith("Error: "))
    assert f"{disk}" in error and "no space left on the device" in error
    assert " free of 256.0 KB on " in error and "Free some space or choose another folder" in error

    root = out / "align" / "checkpoints"
    last = latest_checkpoint(root)
    assert last is not None, "no complete checkpoint before the disk filled up"
    step = int(json.loads((last / "trainer_state.json").read_text())["step"])
    assert 1 <= step < 12
    assert load_file(str(last / "trainable.safetensors"))  # the last complete checkpoint loads
    assert not [p for p in last.iterdir() if ".tmp-" in p.name]

    remount("size=16m")
    resumed = _train(out, pairs, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed from {root}" in resumed.output and "align: 12 steps" in resumed.output


def test_read_only_run_folder_fails_before_building(tiny_components, tmp_path, small_disk):
    disk, remount = small_disk
    pairs = _data(tmp_path / "data")
    remount("ro")
    result = _train(disk / "run", pairs)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert (f"run.output_dir {disk}/run: cannot write to {disk}: the file system is read-only"
            in result.output)
    assert "trainable set" not in result.output  # nothing was built


def test_writing_turns_storage_errors_into_clear_errors(tmp_path, small_disk):
    disk, _remount = small_disk
    with pytest.raises(StorageError, match=rf"cannot write metrics file {disk}/x: no space left on the device "
                                           rf"\(.* free of 256.0 KB on {disk}\)"):
        with writing(disk / "x", "metrics file"), open(disk / "x", "wb") as f:
            f.write(os.urandom(1 << 20))
            f.flush()
    with pytest.raises(OSError, match="not a storage problem"):  # other errors pass through unchanged
        with writing(disk / "y"):
            raise OSError(errno.EINVAL, "not a storage problem")
