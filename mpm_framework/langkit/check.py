"""Is a language pack ready to publish? (torch-free; ``mpm lang check`` and
:func:`mpm_framework.testing.check_language_pack` both run this.)

The checks, each a :class:`Finding` of the :class:`CheckReport`:

- **contract** — identity, caption prompts and every phrase key present (the
  contract's own validation), lingua knows ``lingua_name``;
- **phrases** — every phrase and caption prompt is translated: none marked
  ``"untranslated"`` in the pack's ``review`` marks, none of three or more
  words still the English original or read as English; labels of one or two
  words that read as English ("Image" is French too) or as another installed
  language ("Assistente": Italian and Portuguese) are warnings;
- **calibration** — at least :data:`MIN_PAIRS` pairs, each translated, and
  at least :data:`MIN_RESPONSE_RATE` of the responses identified as the
  language among the installed packs (the candidates of the
  response-language rate);
- **word segmentation** — the offline route (no network, no downloaded models)
  segments every calibration response into words;
- **toy grammar** (only when the pack has one) — realise -> parse recovers
  every object of ``scenes`` random scenes for every caption template and
  every answer, questions end with a question mark, and the realised texts
  are identified as the language (unless every word of a text belongs to the
  identified language too: "Verde." is Spanish, Italian and Portuguese);
- **review** — entries the pack marks for review (machine translations) are
  listed as warnings.

With ``require_translated=False`` untranslated phrases and calibration pairs
are warnings: a fresh scaffold is structurally sound before anyone translated
it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MPMError

MIN_PAIRS = 60
MIN_RESPONSE_RATE = 0.99
SHORT_WORDS = 2  # labels this short may be cognates ("Image" is French too): warned about, never failed
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_SHOWN = 12  # items listed per finding in the report


@dataclass
class Finding:
    """One check: passed, failed, or passed with a warning."""

    check: str
    status: str  # "ok" | "fail" | "warn" | "skip"
    message: str
    items: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    code: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status != "fail" for f in self.findings)

    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    def add(self, check: str, status: str, message: str, items: Iterable[str] = ()) -> Finding:
        finding = Finding(check, status, message, list(items))
        self.findings.append(finding)
        return finding

    def render(self) -> str:
        mark = {"ok": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}
        lines = [f"language pack '{self.code}':"]
        for f in self.findings:
            lines.append(f"  [{mark[f.status]}] {f.check}: {f.message}")
            lines += [f"           - {item}" for item in f.items[:_SHOWN]]
            if len(f.items) > _SHOWN:
                lines.append(f"           ... and {len(f.items) - _SHOWN} more")
        n = len(self.failed())
        lines.append("ready to publish" if self.ok else f"not ready: {n} check{'s' * (n != 1)} failed")
        return "\n".join(lines)


# -- helpers -----------------------------------------------------------------------


def _english() -> Any:
    from ..lang_en.pack import EnglishPack

    return EnglishPack()


def candidate_packs(pack: Any, candidates: Iterable[Any] | None = None) -> list[Any]:
    """``pack`` first, then the other installed packs (by code), for language ID.

    An installed pack that fails to load is left out here: checking one pack
    must not depend on every other being sound."""
    if candidates is None:
        from ..plugins import get_registry

        registry, others = get_registry(), []
        for code in registry.names("language"):
            try:
                others.append(registry.get("language", code).load_factory()())
            except Exception:  # another pack's problem, reported by its own check
                continue
        candidates = others
    out = [pack]
    for other in candidates:
        if other.code != pack.code and other.code not in {p.code for p in out}:
            out.append(other)
    if "en" not in {p.code for p in out}:
        out.append(_english())
    return out


def _review_marks(pack: Any) -> dict[str, str]:
    marks = getattr(pack, "review", None)
    return dict(marks) if isinstance(marks, Mapping) else {}


def _text_for_id(text: str) -> str:
    return _PLACEHOLDER.sub(" ", text)


def _grammar(pack: Any) -> Any:
    from ..text.toy_grammars import toy_grammar

    return toy_grammar(pack)


# -- the checks -----------------------------------------------------------------------


def _check_contract(pack: Any, report: CheckReport) -> bool:
    from ..contracts.language import contract_problems
    from ..text import langid

    problems = contract_problems(pack)
    if problems:
        report.add("contract", "fail", "the pack does not fulfil the contract", problems)
        return False
    if not langid.lingua_known(pack.lingua_name):
        report.add("contract", "warn", f"lingua has no language '{pack.lingua_name}': language ID will rely on "
                                       "the pack's vocabulary alone")
    else:
        report.add("contract", "ok", f"{pack.describe()}, script {pack.script}, lingua {pack.lingua_name}")
    return True


def _check_phrases(pack: Any, report: CheckReport, packs: list[Any], require_translated: bool) -> None:
    from ..text import langid

    english = _english()
    marks = _review_marks(pack)
    texts = {f"phrase '{k}'": v for k, v in pack.phrases.items()}
    texts.update({f"caption prompt {i + 1}": v for i, v in enumerate(pack.caption_prompts)})
    originals = {f"phrase '{k}'": v for k, v in english.phrases.items()}
    originals.update({f"caption prompt {i + 1}": v for i, v in enumerate(english.caption_prompts)})
    english_vs = [pack, *[p for p in packs if p.code == "en"][:1]] if pack.code != "en" else [pack]
    english_texts = set(originals.values())
    untranslated, english_like, elsewhere = [], [], []
    for where, text in texts.items():
        key = where.split("'")[1] if "'" in where else where
        short = len(langid.words_of(_text_for_id(text))) <= SHORT_WORDS
        if pack.code != "en" and (marks.get(key) == "untranslated" or (text.strip() in english_texts and not short)):
            untranslated.append(f"{where}: {text!r}")
            continue
        probe = _text_for_id(text)
        if not langid.words_of(probe):
            continue
        if pack.code != "en" and langid.identify(probe, english_vs) == "en":
            (elsewhere if short else english_like).append(f"{where}: {text!r} reads as English")
            continue
        found = langid.identify(probe, packs)
        if found != pack.code:
            elsewhere.append(f"{where}: {text!r} identified as {found}")
    status = "fail" if require_translated else "warn"
    if untranslated:
        report.add("phrases", status, f"{len(untranslated)} of {len(texts)} phrases and prompts are untranslated",
                   untranslated)
    if english_like:
        report.add("phrases", status, f"{len(english_like)} phrases are not identified as {pack.name}", english_like)
    if elsewhere:
        report.add("phrases", "warn", f"{len(elsewhere)} phrases are identified as another language (labels of one "
                                      "or two words often are: check them)", elsewhere)
    if not (untranslated or english_like):
        report.add("phrases", "ok", f"{len(texts)} phrases and prompts translated, none reads as English")


def _check_calibration(pack: Any, report: CheckReport, packs: list[Any], require_translated: bool) -> list[str]:
    from ..text import langid

    pairs = list(pack.calibration())
    responses = [p.response for p in pairs]
    if len(pairs) < MIN_PAIRS:
        report.add("calibration", "fail", f"{len(pairs)} pairs; a pack carries at least {MIN_PAIRS}")
    empty = [f"pair {i + 1}" for i, p in enumerate(pairs) if not (p.instruction.strip() and p.response.strip())]
    if empty:
        report.add("calibration", "fail", "pairs with an empty instruction or response", empty)
    if pack.code == "en":
        return responses
    marks = _review_marks(pack)
    untranslated = [f"pair {i + 1}: {p.instruction!r} -> {p.response!r}" for i, p in enumerate(pairs)
                    if marks.get(f"calibration {i + 1}") == "untranslated"
                    or p.instruction == p.instruction_en or p.response == p.response_en]
    if untranslated:
        report.add("calibration", "fail" if require_translated else "warn",
                   f"{len(untranslated)} of {len(pairs)} pairs are untranslated", untranslated)
        return responses
    missed = [f"pair {i + 1}: {r!r} identified as {langid.identify(r, packs)}"
              for i, r in enumerate(responses) if langid.identify(r, packs) != pack.code]
    rate = 1 - len(missed) / max(len(responses), 1)
    if rate < MIN_RESPONSE_RATE:
        report.add("calibration", "fail", f"{rate:.0%} of the responses are identified as {pack.name} "
                                          f"(needs {MIN_RESPONSE_RATE:.0%})", missed)
    elif len(pairs) >= MIN_PAIRS and not empty:
        report.add("calibration", "ok", f"{len(pairs)} pairs, {rate:.0%} of the responses identified as "
                                        f"{pack.name}", missed)
    return responses


def _check_word_segmentation(pack: Any, report: CheckReport, texts: list[str]) -> None:
    from ..text import stanza_route

    texts = [t for t in texts if t.strip()] or list(pack.caption_prompts)
    try:
        if callable(getattr(pack, "segmenter", None)) and pack.segmenter() is not None:
            route, tokens = stanza_route.ROUTE_SEGMENTER, [pack.segment_words(t) for t in texts]
        else:
            tok = stanza_route.get_tokenizer(getattr(pack, "stanza_code", None) or pack.code, offline=True)
            route, tokens = tok.route, tok.tokenize_many(texts)
    except Exception as exc:  # reported, with the cause
        report.add("word segmentation", "fail", f"offline word segmentation raised {type(exc).__name__}: {exc}")
        return
    empty = [t for t, toks in zip(texts, tokens, strict=True) if not toks]
    if empty:
        report.add("word segmentation", "fail", f"{len(empty)} texts gave no words offline ({route})", empty)
    else:
        n = sum(len(t) for t in tokens)
        report.add("word segmentation", "ok", f"offline route {route}: {n} words from {len(texts)} texts")


def toy_round_trip(grammar: Any, scenes: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Realise ``scenes`` random scenes (every caption template, every question and
    answer) and parse them back: (texts realised, round-trip failures described,
    questions without a question mark). Shared by ``mpm lang check`` and packs' tests."""
    from ..toyworld.scene import ObjectSpec, questions_for, sample_scene

    templates = len(getattr(grammar, "caption_templates", ()) or ())
    rng = random.Random(seed)
    texts: list[str] = []
    wrong: list[str] = []
    unasked: list[str] = []
    for _ in range(scenes):
        scene = sample_scene(rng, max_objects=3)
        gold = [ObjectSpec(o.color, o.shape, o.size, o.position) for o in scene.objects]
        captions = ([grammar.realise_caption(scene, rng, template=t) for t in range(templates)] if templates
                    else [grammar.realise_caption(scene, rng)])
        for caption in captions:
            if grammar.parse_caption(caption) != gold:
                wrong.append(f"caption {caption!r} parses as {grammar.parse_caption(caption)}")
        texts += captions
        for q in questions_for(scene):
            question, answer = grammar.realise_question(q, rng), grammar.realise_answer(q, rng)
            if grammar.parse_answer(answer, q.kind) != q.answer:
                wrong.append(f"answer {answer!r} to a {q.kind} question parses as "
                             f"{grammar.parse_answer(answer, q.kind)!r}, not {q.answer!r}")
            if not question.rstrip().endswith(("?", "？", "؟", ";")):
                unasked.append(question)
            texts += [question, answer]
    return texts, wrong, unasked


def _check_grammar(pack: Any, report: CheckReport, packs: list[Any], scenes: int) -> None:
    from ..text import langid

    grammar = _grammar(pack)
    if grammar is None:
        report.add("toy grammar", "skip", "no toy grammar (optional: the pack works for real models without one)")
        return
    if scenes <= 0:
        report.add("toy grammar", "skip", "the pack has a toy grammar; its round trip was not asked for (0 scenes)")
        return
    templates = len(getattr(grammar, "caption_templates", ()) or ())
    texts, wrong, unasked = toy_round_trip(grammar, scenes)
    if wrong or unasked:
        report.add("toy grammar", "fail", f"realise -> parse fails on {len(wrong)} texts of {scenes} scenes",
                   [*wrong, *[f"question without a question mark: {q!r}" for q in unasked]])
    else:
        report.add("toy grammar", "ok", f"realise -> parse exact on {scenes} scenes"
                                        f" ({templates or 'random'} caption templates, every answer)")
    owners = {p.code: p for p in packs}
    misread = []
    for text in dict.fromkeys(texts):  # each distinct text once
        found = langid.identify(text, packs)
        if found in (None, pack.code):
            continue
        words = langid.words_of(text)
        if all(owners[found].owns_word(w) and pack.owns_word(w) for w in words):  # "Verde." belongs to both
            continue
        misread.append(f"{text!r} identified as {found}")
    if misread:
        report.add("toy language ID", "fail", f"{len(misread)} realised texts are identified as another language",
                   misread)
    else:
        report.add("toy language ID", "ok", f"{len(set(texts))} distinct realised texts identified as {pack.name} "
                                            "(or shared word for word with a related language)")


def check_pack(pack: Any, *, candidates: Iterable[Any] | None = None, scenes: int = 1000,
               require_translated: bool = True) -> CheckReport:
    """Run every check on ``pack`` (an instance); see the module docstring."""
    report = CheckReport(getattr(pack, "code", "?"))
    if not _check_contract(pack, report):
        return report
    packs = candidate_packs(pack, candidates)
    _check_phrases(pack, report, packs, require_translated)
    try:
        responses = _check_calibration(pack, report, packs, require_translated)
    except Exception as exc:  # a broken calibration() is a finding, not a crash
        report.add("calibration", "fail", f"calibration() raised {type(exc).__name__}: {exc}")
        responses = []
    _check_word_segmentation(pack, report, responses)
    _check_grammar(pack, report, packs, scenes)
    marks = {k: v for k, v in _review_marks(pack).items() if v != "untranslated"}
    if marks:
        report.add("review", "warn", f"{len(marks)} entries are marked for review by a speaker",
                   [f"{k}: {v}" for k, v in marks.items()])
    return report


def check_installed(code: str, **kwargs: Any) -> CheckReport:
    """:func:`check_pack` on the installed pack registered under ``code`` (or an alias)."""
    from ..plugins import get_registry

    registration = get_registry().get("language", code)  # UnknownComponentError says "did you mean"
    try:
        pack = registration.load_factory()()
    except MPMError:
        raise
    except Exception as exc:
        raise MPMError(f"language pack '{code}' (plugin {registration.plugin}) could not be instantiated: "
                       f"{type(exc).__name__}: {exc}") from exc
    return check_pack(pack, **kwargs)
