"""Offline language identification: lingua, combined with the packs' vocabularies.

lingua-language-detector ships its n-gram models, so it runs without a
network, and it is accurate on sentences. On the one- to three-word answers of
the toy world it is not: "Rot." or "Es ist rot." come out as English, and
"Triangle." is English and French at once. Those answers are made of words the
packs themselves produce, so the packs know them.

The two sources are combined as a product of experts (naive Bayes over the
candidate languages ``c``)::

    log P(c | text) = log max(P_lingua(c | text), FLOOR)
                      + sum over words w of  log(IN) if c owns w else log(OUT)   + const

``P_lingua`` is lingua's confidence restricted to the candidates (uniform for
a candidate lingua does not know). A pack *owns* a word if it is in its
vocabulary (``pack.owns_word``: its toy-world lexicon and the closed-class
words of its templates) or is written in the pack's script (``pack.script``,
by Unicode block: :mod:`.scripts`; a Japanese pack owns kana and Han, a
Chinese pack Han). A word every
candidate owns, or none owns, shifts all candidates equally and drops out; a
word only one language owns moves the decision by ``log(IN/OUT) = log 9``
nats per word. ``FLOOR`` caps how sure lingua can be, so that on a long
sentence about ``log(1/FLOOR) / log 9`` ≈ 3 owned words would be needed to
overrule it, while on a short answer, where lingua's confidences are close
together, one owned word decides. Between packs that share a script, script
evidence cancels, so lingua and the packs' vocabularies decide -- never the
order in which the packs were registered.

Text without any letter ("2.") has no language: :func:`identify` returns None.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from ..errors import MPMError, did_you_mean
from . import rule_split, scripts


class LanguagePack(Protocol):
    """What identification reads of a pack (a ``contracts.language.LanguagePack``
    has it all). Declared here, not imported: the contract's default methods
    call this module, and this module must not import the contract back."""

    code: str
    script: str
    lingua_name: str

    def owns_word(self, word: str) -> bool: ...

FLOOR = 1e-3
IN, OUT = 0.9, 0.1
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_lock = threading.Lock()


@lru_cache(maxsize=16)
def _detector(lingua_names: tuple[str, ...]) -> Any:
    from lingua import Language, LanguageDetectorBuilder

    languages = [getattr(Language, name) for name in lingua_names]
    return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()


def lingua_known(name: str | None) -> bool:
    """Whether lingua has a model for ``name`` (a ``lingua.Language`` member name)."""
    if not name:
        return False
    from lingua import Language

    return hasattr(Language, name)


_installed: tuple[Any, list[LanguagePack]] | None = None


def installed_packs() -> list[LanguagePack]:
    """One instance of every registered language pack (rebuilt when the plugins change)."""
    global _installed
    from ..plugins import get_registry

    registry = get_registry()
    if _installed is None or _installed[0] is not registry:
        _installed = (registry, [_load(registry, code) for code in registry.names("language")])
    return list(_installed[1])


def _load(registry: Any, code: str) -> LanguagePack:
    # Straight from the registry: the contract's default methods call this
    # module, so it must not import the contract (composition.load_language
    # is where packs are validated).
    return registry.get("language", code).load_factory()()


def resolve(candidates: Iterable[LanguagePack | str] | None) -> list[LanguagePack]:
    """Packs from instances or codes; None means every installed pack."""
    if candidates is None:
        return installed_packs()
    from ..plugins import get_registry

    packs: list[LanguagePack] = []
    for c in candidates:
        packs.append(_load(get_registry(), c) if isinstance(c, str) else c)
    codes = [p.code for p in packs]
    if len(set(codes)) != len(codes):
        raise MPMError(f"language candidates must be distinct, got {codes}")
    return packs


def words_of(text: str) -> list[str]:
    """The lower-cased words that carry lexical evidence: runs of letters
    (apostrophes and hyphens split: ``l'image`` -> ``l``, ``image``), Han and
    other CJK characters one by one. The same split builds the packs'
    vocabularies, so the two always agree."""
    out: list[str] = []
    for run in _LETTER_RUN.findall(rule_split.normalize(text).lower()):
        out.extend(rule_split.split_words(run, "und") if rule_split.has_cjk(run) else [run])
    return out


def _lingua_probs(text: str, packs: Sequence[LanguagePack]) -> list[float]:
    known = [p for p in packs if lingua_known(getattr(p, "lingua_name", None))]
    uniform = 1.0 / len(packs)
    if len(known) < 2:
        return [uniform] * len(packs)
    names = tuple(sorted({p.lingua_name for p in known}))
    with _lock:  # the detector is shared; building it twice would waste ~0.5 s
        detector = _detector(names)
    conf = {c.language.name: c.value for c in detector.compute_language_confidence_values(text)}
    share = len(known) / len(packs)  # lingua speaks for the candidates it knows
    total = sum(conf.get(p.lingua_name, 0.0) for p in known)
    if total <= 0:
        return [uniform] * len(packs)
    return [share * conf.get(p.lingua_name, 0.0) / total if p in known else uniform for p in packs]


def _owns(pack: LanguagePack, word: str) -> bool:
    owns = getattr(pack, "owns_word", None)
    if owns is not None and owns(word):
        return True
    return scripts.written_in(word, _pack_scripts(pack))


def _pack_scripts(pack: LanguagePack) -> frozenset[str]:
    """The block scripts of a pack; Latin is left out: it is shared by most
    packs, and evidence that only says "not Han" is lingua's job."""
    return scripts.scripts_of_pack(getattr(pack, "script", None)) - {"Latn"}


def scores(text: str, candidates: Iterable[LanguagePack | str] | None = None) -> dict[str, float]:
    """Posterior probability of each candidate language (empty for text without letters)."""
    packs = resolve(candidates)
    if not packs:
        raise MPMError("no language packs to identify against (install one: mpm lang install de)")
    words = words_of(text)
    if not words:
        return {}
    logp = [math.log(max(p, FLOOR)) for p in _lingua_probs(text, packs)]
    for i, pack in enumerate(packs):
        logp[i] += sum(math.log(IN) if _owns(pack, w) else math.log(OUT) for w in words)
    top = max(logp)
    weights = [math.exp(v - top) for v in logp]
    z = sum(weights)
    return {pack.code: w / z for pack, w in zip(packs, weights)}


def identify(text: str, candidates: Iterable[LanguagePack | str] | None = None) -> str | None:
    """The most probable language code of ``text`` among ``candidates``; None without letters."""
    posterior = scores(text, candidates)
    if not posterior:
        return None
    return max(posterior, key=lambda code: posterior[code])


def is_language(text: str, code: str, candidates: Iterable[LanguagePack | str] | None = None) -> bool | None:
    """Whether ``text`` is in language ``code``; None for a number without letters.

    Besides being the most probable language, a text counts as ``code`` when
    every word of it belongs to ``code``'s vocabulary: "Triangle." is a correct
    French answer even though it is English too. A number ("2.") belongs to no
    language and is left out of rates; a response with neither letters nor
    digits (empty, punctuation, broken bytes) is no answer in ``code`` at all,
    so it counts against it instead of vanishing from the rate."""
    packs = resolve(candidates)
    target = next((p for p in packs if p.code == code), None)
    if target is None:
        raise MPMError(f"language '{code}' is not among the candidates "
                       f"{[p.code for p in packs]}.{did_you_mean(code, [p.code for p in packs])}")
    words = words_of(text)
    if not words:
        return None if any(ch.isdigit() for ch in text) else False
    if all(_owns(target, w) for w in words):
        return True
    return identify(text, packs) == code


@dataclass(frozen=True)
class LanguageRate:
    """Share of answers in the asked language; numbers without letters are left out."""

    rate: float
    counted: int
    neutral: int


def language_rate(texts: Iterable[str], code: str,
                  candidates: Iterable[LanguagePack | str] | None = None) -> LanguageRate:
    """The response-language rate of ``texts`` for the asked language ``code``."""
    packs = resolve(candidates)
    hits = counted = neutral = 0
    for text in texts:
        verdict = is_language(text, code, packs)
        if verdict is None:
            neutral += 1
            continue
        counted += 1
        hits += int(verdict)
    return LanguageRate(hits / counted if counted else float("nan"), counted, neutral)
