"""Registration only: no torch, no pack import (``mpm plugins list`` stays fast)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("zh", "mpm_lang_zh.pack:ChinesePack", aliases=["chinese", "zh-hans", "zh-cn", "中文"],
             description="Chinese / 中文 (simplified)")
