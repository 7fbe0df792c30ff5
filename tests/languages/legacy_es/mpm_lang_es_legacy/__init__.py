"""Spanish (español) language pack for MPM: the worked example of docs/language-packs.md."""
