"""Registration only: no torch, no pack import (``mpm plugins list`` stays fast)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("de", "mpm_lang_de.pack:GermanPack", aliases=["german", "deutsch"],
             description="German / Deutsch")
