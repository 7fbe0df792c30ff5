"""Registration only: no torch, no pack import (``mpm plugins list`` stays fast)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("pt", "mpm_lang_pt.pack:PortuguesePack", aliases=["portuguese", "português", "portugues"],
             description="Portuguese / Português")
