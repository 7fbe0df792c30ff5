"""Lets the tests run from a checkout before the pack is installed."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("mpm_lang_sw") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
