from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("en", "mpm_framework.lang_en.pack:EnglishPack", aliases=["english"],
             description="English (the pivot language)")
