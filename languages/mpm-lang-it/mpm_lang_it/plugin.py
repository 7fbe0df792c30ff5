"""Registration only: no torch, no pack import (``mpm plugins list`` stays fast)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("it", "mpm_lang_it.pack:ItalianPack", aliases=["italian", "italiano"],
             description="Italian / Italiano")
