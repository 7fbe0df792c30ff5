"""Tools for language-pack authors (torch-free): scaffold a pack (``mpm lang
new``), and check one before publishing (``mpm lang check``,
:func:`mpm_framework.testing.check_language_pack`)."""
