"""Start-up: `mpm --help` and `mpm plugins list` against `import torch`.

Target: at most 0.25x the time of importing torch (the CLI imports no torch)."""

import subprocess
import sys

import pytest

COMMANDS = {
    "mpm --help": [sys.executable, "-m", "mpm_framework.cli.main", "--help"],
    "mpm plugins list": [sys.executable, "-m", "mpm_framework.cli.main", "plugins", "list"],
}


def _run(cmd):
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_startup_mpm(benchmark, tag, name):
    tag("startup", "mpm", command=name, key=f"startup/{name}", versus="startup/import torch", ratio="time",
        target=0.25)
    benchmark.pedantic(_run, args=(COMMANDS[name],), rounds=5, iterations=1, warmup_rounds=1)


def test_startup_import_torch(benchmark, tag):
    tag("startup", "peer", command="python -c 'import torch'", key="startup/import torch")
    benchmark.pedantic(_run, args=([sys.executable, "-c", "import torch"],), rounds=5, iterations=1,
                       warmup_rounds=1)
