"""Text utilities shared by every language pack (torch-free at import time).

- :mod:`.rule_split` — the documented rule-based word/sentence split that feeds
  stanza's pretokenized mode when no stanza models are installed;
- :mod:`.stanza_route` — one cached stanza pipeline per language: the full
  pipeline when the user downloaded stanza's models (``mpm lang download``), the
  offline pipelines otherwise (jieba for Chinese, pretokenized for the rest);
- :mod:`.langid` — offline language identification (lingua) combined with the
  packs' own vocabularies, for the response-language rate;
- :mod:`.toy_lexicon` — surface forms -> toy-world attributes, and the parser
  that turns a caption or answer back into attributes;
- :mod:`.pack_base` — :class:`BaseLanguagePack`, the contract plus the shared
  plumbing above, which every shipped pack subclasses;
- :mod:`.phrases` — the UI phrase keys every pack provides.
"""
