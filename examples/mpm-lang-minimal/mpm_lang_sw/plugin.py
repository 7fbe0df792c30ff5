"""Registration only: no torch, no pack import (``mpm plugins list`` stays fast)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("sw", "mpm_lang_sw.pack:SwahiliPack", aliases=["swahili", "kiswahili"],
             description="Swahili / Kiswahili")
