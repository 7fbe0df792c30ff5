"""Toy-world words of one language, and the parser built on them.

A pack lists its surface forms — every inflected form it produces or accepts —
with the attribute and canonical English value each one names (``"roten":
("color", "red")``), the words that separate objects (``und``, ``,``), and
which number words double as articles (``ein``). Parsing then works the same
way in every language:

1. **Scan.** The text is read left to right, taking the longest entry at each
   position: whole words for languages written with spaces (multi-word entries
   allowed), the words of the pack's own segmenter for a script written
   without spaces (``segmenter=``: an entry only matches whole words, so
   Japanese した never matches inside でした), characters as the fallback
   (``segmentation="chars"``, Chinese). The result is a list of mentions
   (attribute, value) and boundaries, in text order.
2. **Assemble objects.** Mentions fill the slots of the current object; a
   mention of a slot already filled starts a new object (``a small red circle
   on the left, a large ...``: the second size opens the second object); a
   boundary ends the current object once its shape has been named (so "On the
   left, there is a circle" keeps the position with its circle). Count
   mentions are not object attributes and are skipped.
3. **Answers.** The first mention of the asked attribute; for counts, the
   first number that is not also an article, else the first article-number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..contracts.toy_grammar import COLORS, POSITIONS, SHAPES, SIZES, ObjectSpec
from ..errors import ConfigError, DataError, did_you_mean
from . import rule_split

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": COLORS, "shape": SHAPES, "size": SIZES, "position": POSITIONS,
}
ANSWER_KINDS = (*ATTRIBUTES, "count")
_BOUNDARY = "boundary"


@dataclass(frozen=True)
class Mention:
    attr: str  # an attribute, "count" or "boundary"
    value: str
    surface: str


class ToyLexicon:
    """Surface forms -> (attribute, canonical value) for one language."""

    def __init__(
        self,
        code: str,
        entries: Mapping[str, tuple[str, str]],
        boundaries: Iterable[str],
        *,
        segmentation: str = "words",
        weak_numbers: Iterable[str] = (),
        ignore: Iterable[str] = (),
        segmenter: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        if segmentation not in ("words", "chars"):
            raise ConfigError(f"{code}: segmentation must be 'words' or 'chars', not {segmentation!r}")
        self.code = code
        # a pack's own word segmenter: entries and text are both cut into its words
        self.segmenter = segmenter
        self.segmentation = "words" if segmenter is not None else segmentation
        self._args = (dict(entries), tuple(boundaries), segmentation, tuple(weak_numbers), tuple(ignore))
        self.entries: dict[str, tuple[str, str]] = {}
        for surface, (attr, value) in entries.items():
            if attr == "count":
                if not value.isdigit():
                    raise DataError(f"{code}: count entry {surface!r} must map to digits, not {value!r} "
                                    "(fix the pack's toy lexicon)")
            elif value not in ATTRIBUTES.get(attr, ()):
                raise DataError(f"{code}: entry {surface!r} -> ({attr!r}, {value!r}) is not a toy-world value; "
                                f"{attr} values: {', '.join(ATTRIBUTES.get(attr, ())) or '(unknown attribute)'}")
            self.entries[self._norm(surface)] = (attr, value)
        self.boundaries = frozenset(self._norm(b) for b in boundaries)
        # Words that contain an entry but mean something else (Chinese 一共 "in
        # total" is not the number 一): consumed whole, so they never match.
        self.ignore = frozenset(self._norm(w) for w in ignore)
        for name, group in (("boundaries", self.boundaries), ("ignored words", self.ignore)):
            clash = group & set(self.entries)
            if clash:
                raise DataError(f"{code}: {sorted(clash)} are both {name} and entries: keep each word in one place")
        self.weak_numbers = frozenset(self._norm(w) for w in weak_numbers)
        unknown = self.weak_numbers - {s for s, (a, _) in self.entries.items() if a == "count"}
        if unknown:
            raise DataError(f"{code}: weak numbers {sorted(unknown)} are not count entries: add them as count "
                            "entries or drop them from weak_numbers")
        keys = [*self.entries, *self.boundaries, *self.ignore]
        self._max_len = max((len(self._units(k)) for k in keys), default=1)
        for attr, values in ATTRIBUTES.items():
            missing = set(values) - {v for a, v in self.entries.values() if a == attr}
            if missing:
                raise DataError(f"{code}: no surface form for {attr} {sorted(missing)}: add an entry for each")

    # -- scanning ----------------------------------------------------------------
    def _norm(self, text: str) -> str:
        text = rule_split.normalize(text).lower()
        return " ".join(self._units(text)) if self.segmentation == "words" else text

    def _units(self, text: str) -> list[str]:
        if self.segmenter is not None:
            return [w.lower() for w in self.segmenter(text) if w.strip()]
        if self.segmentation == "chars":
            return list(text)
        return [w.lower() for w in rule_split.split_words(text, self.code)]

    def with_segmenter(self, segmenter: Callable[[str], Sequence[str]]) -> ToyLexicon:
        """The same lexicon matching on the words of ``segmenter`` (a pack's own)."""
        entries, boundaries, segmentation, weak, ignore = self._args
        return ToyLexicon(self.code, entries, boundaries, segmentation=segmentation, weak_numbers=weak,
                          ignore=ignore, segmenter=segmenter)

    def scan(self, text: str) -> list[Mention]:
        """Mentions and boundaries in text order, longest match first."""
        units = self._units(rule_split.normalize(text).lower())
        joiner = " " if self.segmentation == "words" else ""
        out: list[Mention] = []
        i = 0
        while i < len(units):
            for n in range(min(self._max_len, len(units) - i), 0, -1):
                surface = joiner.join(units[i:i + n])
                if surface in self.entries:
                    attr, value = self.entries[surface]
                    out.append(Mention(attr, value, surface))
                    break
                if surface in self.boundaries:
                    out.append(Mention(_BOUNDARY, "", surface))
                    break
                if surface in self.ignore:
                    break
            else:
                n = 1
            i += n
        return out

    # -- parsing -----------------------------------------------------------------
    def parse_objects(self, text: str) -> list[ObjectSpec]:
        """The objects a caption describes (step 2 of the module docstring)."""
        objects: list[ObjectSpec] = []
        current: dict[str, str] = {}
        for m in self.scan(text):
            if m.attr == _BOUNDARY:
                if "shape" in current:
                    objects.append(ObjectSpec(**current))
                    current = {}
            elif m.attr in ATTRIBUTES:
                if m.attr in current:
                    objects.append(ObjectSpec(**current))
                    current = {}
                current[m.attr] = m.value
        if current:
            objects.append(ObjectSpec(**current))
        return objects

    def parse_value(self, text: str, kind: str) -> str | None:
        """Canonical English value of an answer to a ``kind`` question, or None."""
        if kind not in ANSWER_KINDS:
            raise ConfigError(f"unknown answer kind {kind!r}.{did_you_mean(str(kind), ANSWER_KINDS)} "
                              f"Kinds: {', '.join(ANSWER_KINDS)}")
        mentions = [m for m in self.scan(text) if m.attr == kind]
        if kind == "count":
            strong = [m for m in mentions if m.surface not in self.weak_numbers]
            mentions = strong or mentions
        return mentions[0].value if mentions else None

    def words(self) -> frozenset[str]:
        """Every word of every entry and boundary (the lexical part of a pack's vocabulary)."""
        return frozenset(" ".join([*self.entries, *self.boundaries, *self.ignore]).split())
