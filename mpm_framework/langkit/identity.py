"""A language's identity from a BCP-47 code: lingua's name and ISO codes, plus
a small table of native names and ISO 15924 scripts for every language lingua
knows (lingua has neither).

``identity_for("sw")`` -> ``LanguageIdentity("sw", "Swahili", "Kiswahili",
"Latn", "SWAHILI")``; the code may carry a region or script subtag
(``pt-BR``), looked up by its language part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MPMError, did_you_mean

# ISO 639-1 -> (native name, ISO 15924 script), for the 75 languages of lingua 2.x.
NATIVE: dict[str, tuple[str, str]] = {
    "af": ("Afrikaans", "Latn"), "sq": ("Shqip", "Latn"), "ar": ("العربية", "Arab"), "hy": ("Հայերեն", "Armn"),
    "az": ("Azərbaycanca", "Latn"), "eu": ("Euskara", "Latn"), "be": ("Беларуская", "Cyrl"),
    "bn": ("বাংলা", "Beng"), "nb": ("Norsk bokmål", "Latn"), "bs": ("Bosanski", "Latn"),
    "bg": ("Български", "Cyrl"), "ca": ("Català", "Latn"), "zh": ("中文", "Hans"), "hr": ("Hrvatski", "Latn"),
    "cs": ("Čeština", "Latn"), "da": ("Dansk", "Latn"), "nl": ("Nederlands", "Latn"), "en": ("English", "Latn"),
    "eo": ("Esperanto", "Latn"), "et": ("Eesti", "Latn"), "fi": ("Suomi", "Latn"), "fr": ("Français", "Latn"),
    "lg": ("Luganda", "Latn"), "ka": ("ქართული", "Geor"), "de": ("Deutsch", "Latn"), "el": ("Ελληνικά", "Grek"),
    "gu": ("ગુજરાતી", "Gujr"), "he": ("עברית", "Hebr"), "hi": ("हिन्दी", "Deva"), "hu": ("Magyar", "Latn"),
    "is": ("Íslenska", "Latn"), "id": ("Bahasa Indonesia", "Latn"), "ga": ("Gaeilge", "Latn"),
    "it": ("Italiano", "Latn"), "ja": ("日本語", "Jpan"), "kk": ("Қазақ тілі", "Cyrl"), "ko": ("한국어", "Kore"),
    "la": ("Latina", "Latn"), "lv": ("Latviešu", "Latn"), "lt": ("Lietuvių", "Latn"),
    "mk": ("Македонски", "Cyrl"), "ms": ("Bahasa Melayu", "Latn"), "mi": ("Māori", "Latn"),
    "mr": ("मराठी", "Deva"), "mn": ("Монгол", "Cyrl"), "nn": ("Norsk nynorsk", "Latn"), "fa": ("فارسی", "Arab"),
    "pl": ("Polski", "Latn"), "pt": ("Português", "Latn"), "pa": ("ਪੰਜਾਬੀ", "Guru"), "ro": ("Română", "Latn"),
    "ru": ("Русский", "Cyrl"), "sr": ("Српски", "Cyrl"), "sn": ("chiShona", "Latn"), "sk": ("Slovenčina", "Latn"),
    "sl": ("Slovenščina", "Latn"), "so": ("Soomaali", "Latn"), "st": ("Sesotho", "Latn"),
    "es": ("Español", "Latn"), "sw": ("Kiswahili", "Latn"), "sv": ("Svenska", "Latn"), "tl": ("Tagalog", "Latn"),
    "ta": ("தமிழ்", "Taml"), "te": ("తెలుగు", "Telu"), "th": ("ไทย", "Thai"), "ts": ("Xitsonga", "Latn"),
    "tn": ("Setswana", "Latn"), "tr": ("Türkçe", "Latn"), "uk": ("Українська", "Cyrl"), "ur": ("اردو", "Arab"),
    "vi": ("Tiếng Việt", "Latn"), "cy": ("Cymraeg", "Latn"), "xh": ("isiXhosa", "Latn"), "yo": ("Yorùbá", "Latn"),
    "zu": ("isiZulu", "Latn"),
}
# English names where lingua's member name is not one (BOKMAL -> Norwegian Bokmal).
ENGLISH_NAME = {"BOKMAL": "Norwegian Bokmal", "NYNORSK": "Norwegian Nynorsk"}

_BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|\d{3}))?$")


class UnknownLanguageError(MPMError):
    """The code names no language lingua knows (``mpm lang new`` needs lingua's model)."""


@dataclass(frozen=True)
class LanguageIdentity:
    code: str  # BCP-47, as given
    name: str  # English name (ASCII)
    native_name: str
    script: str  # ISO 15924
    lingua_name: str  # lingua.Language member

    @property
    def module(self) -> str:
        """Import name of the pack: ``mpm_lang_sw``, ``mpm_lang_pt_br``."""
        return "mpm_lang_" + self.code.lower().replace("-", "_")

    @property
    def distribution(self) -> str:
        return "mpm-lang-" + self.code.lower()

    @property
    def class_name(self) -> str:
        """``SwahiliPack``, ``NorwegianBokmalPack``."""
        return "".join(w.capitalize() for w in re.findall(r"[A-Za-z]+", self.name)) + "Pack"


def _lingua_languages() -> dict[str, object]:
    """ISO 639-1 and 639-3 code -> lingua.Language."""
    from lingua import Language

    out: dict[str, object] = {}
    for lang in Language.all():
        out[lang.iso_code_639_1.name.lower()] = lang
        out[lang.iso_code_639_3.name.lower()] = lang
    return out


def _lingua_names() -> dict[str, object]:
    from lingua import Language

    return {lang.name: lang for lang in Language.all()}


def known_codes() -> list[str]:
    """ISO 639-1 codes of every language lingua knows."""
    from lingua import Language

    return sorted(lang.iso_code_639_1.name.lower() for lang in Language.all())


def normalise_code(code: str) -> str:
    """``PT_br`` -> ``pt-BR``: lower-case language, title-case script, upper-case region."""
    parts = code.strip().replace("_", "-").split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        out.append(part.title() if len(part) == 4 else part.upper())
    return "-".join(out)


def identity_for(code: str) -> LanguageIdentity:
    """The identity of the language ``code`` (or English name: ``swahili``)
    names, from lingua and :data:`NATIVE`."""
    by_name = {ENGLISH_NAME.get(n, n.title()).lower(): lang for n, lang in _lingua_names().items()}
    if code.strip().lower() in by_name:  # "swahili" -> sw
        code = by_name[code.strip().lower()].iso_code_639_1.name.lower()
    code = normalise_code(code)
    if not _BCP47.match(code):
        raise UnknownLanguageError(f"'{code}' is neither a BCP-47 language tag such as 'sw', 'pt-BR' or 'zh-Hant' "
                                   f"nor the English name of a language lingua knows.{did_you_mean(code, by_name)}")
    languages = _lingua_languages()
    base = code.split("-")[0]
    lang = languages.get(base)
    if lang is None:
        raise UnknownLanguageError(
            f"lingua knows no language '{base}', so MPM cannot identify text in it."
            f"{did_you_mean(base, [*known_codes(), *by_name])}"
            f" Known: {', '.join(known_codes())}")
    iso1 = lang.iso_code_639_1.name.lower()
    native, script = NATIVE.get(iso1, (lang.name.title(), "Latn"))
    subtags = code.split("-")[1:]
    code = "-".join([iso1, *subtags])  # BCP-47 takes the shortest ISO 639 code: swa -> sw
    script = next((s for s in subtags if len(s) == 4), script)
    name = ENGLISH_NAME.get(lang.name, lang.name.title())
    return LanguageIdentity(code, name, native, script, lang.name)
