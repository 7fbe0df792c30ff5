"""Registration only: no torch, no pack import (``mpm plugins list`` stays fast)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("fr", "mpm_lang_fr.pack:FrenchPack", aliases=["french", "français", "francais"],
             description="French / Français")
