"""Per-language metrics, on words segmented by the language pack.

Word segmentation decision: caption metrics (BLEU, chrF, CIDEr) see the pack's
words (``LanguagePack.segment_words``) — lower-cased, punctuation-only tokens dropped (as coco-caption's PTB
tokenizer does) — joined by spaces. BLEU then runs through sacrebleu with
``tokenize="none"``, so Chinese is scored on the pack's *words* (jieba/stanza),
the same way as German or English, instead of on sacrebleu's own
character-splitting ``zh`` tokenizer; scores are comparable across languages
because one rule produces every language's tokens. chrF ignores whitespace, so
for it the pack's tokens only normalise case and punctuation. CIDEr is CIDEr-D
as in coco-caption, implemented here.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..contracts.language import LanguagePack
from ..errors import DataError

# -- word segmentation ----------------------------------------------------------


def _is_punctuation(token: str) -> bool:
    return all(unicodedata.category(ch).startswith("P") for ch in token)


def segment_many(texts: Sequence[str], pack: LanguagePack) -> list[list[str]]:
    """The pack's words of many texts (one batched call), lower-cased."""
    tokens = pack.segment_words_many(list(texts))
    return [[t.lower() for t in row] for row in tokens]


def caption_tokens(texts: Sequence[str], pack: LanguagePack) -> list[list[str]]:
    """Tokens for caption metrics: the pack's, lower-cased, punctuation dropped."""
    return [[t for t in row if t.strip() and not _is_punctuation(t)] for row in segment_many(texts, pack)]


def _joined(texts: Sequence[str], pack: LanguagePack | None) -> list[str]:
    if pack is None:
        return list(texts)
    return [" ".join(row) for row in caption_tokens(texts, pack)]


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference position; missing ones are None."""
    width = max((len(r) for r in references), default=0)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def _check(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(hypotheses) != len(references):
        raise DataError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets: "
                        "give one list of references per hypothesis")
    empty = [i for i, refs in enumerate(references) if not [r for r in refs if r]]
    if empty:
        raise DataError(f"item {empty[0]} has no reference: drop the item or add a reference text")


# -- BLEU / chrF (sacrebleu) ------------------------------------------------------------


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
         pack: LanguagePack | None = None) -> float:
    """Corpus BLEU (0-100) over the pack's words (word segmentation); each item may have several references.
    Without a pack the texts are taken as already segmented (space-separated words)."""
    from sacrebleu.metrics import BLEU

    _check(hypotheses, references)
    hyps = _joined(hypotheses, pack)
    refs = [_joined(r, pack) for r in references]
    return float(BLEU(tokenize="none").corpus_score(hyps, _reference_streams(refs)).score)


def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
         pack: LanguagePack | None = None) -> float:
    """Corpus chrF (0-100, sacrebleu defaults: character 6-grams, beta 2)."""
    from sacrebleu.metrics import CHRF

    _check(hypotheses, references)
    hyps = _joined(hypotheses, pack)
    refs = [_joined(r, pack) for r in references]
    return float(CHRF().corpus_score(hyps, _reference_streams(refs)).score)


# -- CIDEr-D -------------------------------------------------------------------------------


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    counts: Counter = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i: i + k])] += 1
    return counts


@dataclass(frozen=True)
class CiderResult:
    score: float
    per_item: list[float]


def cider_d(
    hypotheses: Sequence[Sequence[str]],
    references: Sequence[Sequence[Sequence[str]]],
    n: int = 4,
    sigma: float = 6.0,
) -> CiderResult:
    """CIDEr-D over token lists, as coco-caption computes it.

    Per item: tf-idf vectors of 1..n-grams, the idf from the document frequency
    of each n-gram over the items' reference sets (log of the corpus size minus
    log df); for each reference, per n the cosine of the hypothesis vector
    *clipped* at the reference's, times a Gaussian penalty
    exp(-(l_hyp - l_ref)^2 / (2 sigma^2)) on the length difference (coco-caption
    measures length by the number of bigrams); mean over n, mean over
    references, times 10. The corpus score is the mean over items."""
    if len(hypotheses) != len(references):
        raise DataError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets: "
                        "give one list of references per hypothesis")
    if not hypotheses:
        return CiderResult(float("nan"), [])
    ref_counts = [[_ngrams(r, n) for r in refs] for refs in references]
    hyp_counts = [_ngrams(h, n) for h in hypotheses]
    df: Counter = Counter()
    for refs in ref_counts:
        df.update({g for counts in refs for g in counts})
    log_size = math.log(float(len(references)))

    def vector(counts: Counter):
        vec = [dict() for _ in range(n)]
        norm = [0.0] * n
        for gram, tf in counts.items():
            weight = tf * (log_size - math.log(max(1.0, df[gram])))
            vec[len(gram) - 1][gram] = weight
            norm[len(gram) - 1] += weight * weight
        length = sum(tf for gram, tf in counts.items() if len(gram) == 2)
        return vec, [math.sqrt(x) for x in norm], length

    per_item = []
    for hyp, refs in zip(hyp_counts, ref_counts):
        if not refs:
            raise DataError("every item needs at least one reference: drop items without one")
        vec_h, norm_h, len_h = vector(hyp)
        total = [0.0] * n
        for ref in refs:
            vec_r, norm_r, len_r = vector(ref)
            penalty = math.exp(-((len_h - len_r) ** 2) / (2 * sigma**2))
            for k in range(n):
                value = sum(min(w, vec_r[k].get(g, 0.0)) * vec_r[k].get(g, 0.0) for g, w in vec_h[k].items())
                if norm_h[k] != 0 and norm_r[k] != 0:
                    value /= norm_h[k] * norm_r[k]
                total[k] += value * penalty
        per_item.append(10.0 * (sum(total) / n) / len(refs))
    return CiderResult(sum(per_item) / len(per_item), per_item)


def cider(hypotheses: Sequence[str], references: Sequence[Sequence[str]], pack: LanguagePack) -> CiderResult:
    """CIDEr-D of texts, segmented into words by the pack."""
    _check(hypotheses, references)
    hyp_tokens = caption_tokens(hypotheses, pack)
    flat = [r for refs in references for r in refs if r]
    flat_tokens = iter(caption_tokens(flat, pack))
    ref_tokens = [[next(flat_tokens) for r in refs if r] for refs in references]
    return cider_d(hyp_tokens, ref_tokens)


# -- VQA ------------------------------------------------------------------------------


def normalize_answers(texts: Iterable[str], pack: LanguagePack) -> list[str]:
    return [pack.normalize_answer(t) for t in texts]


def exact_match(prediction: str, answers: Sequence[str], pack: LanguagePack) -> float:
    """1.0 when the normalised prediction equals any normalised answer."""
    pred = pack.normalize_answer(prediction)
    return float(pred in set(normalize_answers(answers, pack)))


def vqa_accuracy(prediction: str, answers: Sequence[str], pack: LanguagePack) -> float:
    """The VQA consensus accuracy for several human answers: min(#humans who gave
    the prediction / 3, 1), averaged over the leave-one-out subsets of the
    answers as the official VQA evaluation does (with 10 answers, 3 matches
    score 0.9 and 4 or more score 1). With a single answer it is exact match."""
    if len(answers) <= 1:
        return exact_match(prediction, answers, pack)
    pred = pack.normalize_answer(prediction)
    gold = normalize_answers(answers, pack)
    matches = sum(g == pred for g in gold)
    scores = [min(1.0, (matches - (g == pred)) / 3.0) for g in gold]
    return sum(scores) / len(scores)


# -- response language -------------------------------------------------------------


@dataclass(frozen=True)
class LanguageRateResult:
    rate: float  # share of answers (numbers aside) in the asked language
    counted: int
    neutral: int  # numbers without letters ("2."): no language, left out


def response_language_rate(responses: Sequence[str], pack: LanguagePack,
                           candidates: Sequence[LanguagePack | str] | None = None) -> LanguageRateResult:
    """Share of responses identified as the pack's language, by the core's
    language ID (lingua plus the packs' vocabularies) over ``candidates``
    (default: every installed pack)."""
    from ..text import langid

    packs = langid.resolve(candidates)
    if all(p.code != pack.code for p in packs):
        packs = [pack, *packs]
    result = langid.language_rate(responses, pack.code, packs)
    return LanguageRateResult(result.rate, result.counted, result.neutral)
