"""Text utilities shared by every language pack (torch-free at import time).

- :mod:`.rule_split` — the documented rule-based word/sentence split that feeds
  stanza's pretokenized mode when no stanza models are installed;
- :mod:`.stanza_route` — one cached stanza pipeline per language: the full
  pipeline when the user downloaded stanza's models (``mpm lang download``), the
  offline pipelines otherwise (jieba for Chinese, pretokenized for the rest);
  a pack's own segmenter for scripts written without spaces;
- :mod:`.scripts` — writing systems by Unicode block: a character's script,
  which scripts are written without spaces, what a pack's ISO 15924 code covers;
- :mod:`.langid` — offline language identification (lingua) combined with the
  packs' scripts and vocabularies, for the response-language rate;
- :mod:`.pack_loading` — load an installed pack, checked against the contract;
- :mod:`.pack_base` — :class:`BaseLanguagePack`: the contract plus vocabulary
  and lexicon-based parsing, which every shipped pack subclasses;
- :mod:`.phrases` — the phrase keys (declared in the contract), re-exported;
- toy world, optional: :mod:`.toy_lexicon` (surface forms -> toy-world
  attributes, and the parser), :mod:`.toy_scenes` (sampling scenes, caption
  F1), :mod:`.toy_grammars` (finding a pack's toy grammar).
"""
