"""One real stanza pipeline per language, for the word segmentation behind metrics
(``LanguagePack.segment_words``; stanza calls the step "tokenize").

Two routes, chosen per language the first time it is needed and then cached:

``stanza-full``
    stanza's own neural tokenizer, used when its models are installed: a
    ``resources.json`` listing the language in the stanza resources directory
    (``$STANZA_RESOURCES_DIR``, else stanza's default) — ``mpm lang download
    CODE`` puts them there.
``stanza-offline-jieba`` / ``stanza-offline-pretokenized``
    without models (the usual case offline), stanza still runs: the pipeline
    is built from an *empty* ``resources.json`` in a cache directory with
    ``download_method=None, allow_unknown_language=True``. Chinese uses stanza's
    jieba-backed tokenizer (``tokenize_with_jieba=True``, jieba ships its
    dictionary); every other language runs ``tokenize_pretokenized=True`` on
    the words of :mod:`mpm_framework.text.rule_split`.

If a full pipeline is listed but cannot be built (a damaged download), the
offline route is used and :attr:`StanzaTokenizer.note` says why.

``stanza`` (and with it torch) is imported only when a pipeline is first built.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MPMError
from . import rule_split

ROUTE_FULL = "stanza-full"
ROUTE_JIEBA = "stanza-offline-jieba"
ROUTE_PRETOKENIZED = "stanza-offline-pretokenized"
ROUTE_SEGMENTER = "pack-segmenter"  # the pack's own word segmenter (LanguagePack.segmenter)
ROUTES = (ROUTE_FULL, ROUTE_JIEBA, ROUTE_PRETOKENIZED, ROUTE_SEGMENTER)

_JIEBA_LANGS = ("zh", "zh-hans", "zh-hant")
_log = logging.getLogger("mpm.text")
_lock = threading.Lock()
_cache: dict[tuple[str, str], StanzaTokenizer] = {}


def cache_dir() -> Path:
    """MPM's own cache: ``$MPM_CACHE_DIR``, else ``~/.cache/mpm``."""
    root = os.environ.get("MPM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "mpm")
    return Path(root)


def resources_dir() -> Path:
    """Where stanza's downloaded models live (read at call time, not import time)."""
    env = os.environ.get("STANZA_RESOURCES_DIR")
    if env:
        return Path(env)
    from stanza.resources.common import DEFAULT_MODEL_DIR

    return Path(DEFAULT_MODEL_DIR)


def offline_dir() -> Path:
    """A stanza resources directory whose ``resources.json`` is empty.

    Kept apart from :func:`resources_dir` so that the empty file never hides
    real downloads."""
    path = cache_dir() / "stanza-offline"
    marker = path / "resources.json"
    if not marker.exists():
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f"resources.json.{os.getpid()}.tmp"
        tmp.write_text("{}", encoding="utf-8")
        os.replace(tmp, marker)  # atomic: concurrent processes never read half a file
    return path


def models_listed(stanza_code: str, model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a stanza resources file that lists a tokenizer for the language."""
    resources = model_dir / "resources.json"
    if not resources.exists():
        return False
    try:
        data = json.loads(resources.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    lang = stanza_code
    seen: set[str] = set()
    while isinstance(data.get(lang), dict) and "alias" in data[lang] and lang not in seen:
        seen.add(lang)
        lang = data[lang]["alias"]
    entry = data.get(lang)
    if not isinstance(entry, dict):
        return False
    return bool(entry.get("tokenize")) or "tokenize" in entry.get("default_processors", {})


@dataclass
class StanzaTokenizer:
    """A built pipeline and the route it took."""

    code: str
    route: str
    pipeline: Any = field(repr=False)
    note: str = ""
    # Metrics tokenise the same references again and again (every evaluation,
    # every CIDEr document-frequency pass): the pipeline is deterministic, so
    # results are memoised per text.
    memo_size: int = 200_000
    _memo: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def _prepare(self, text: str) -> str:
        if self.route == ROUTE_PRETOKENIZED:
            # pretokenized mode: tokens separated by spaces, sentences by newlines
            return "\n".join(" ".join(words) for words in rule_split.split(text, self.code))
        return rule_split.normalize(text)

    def sentences(self, text: str) -> list[list[str]]:
        """Tokens per sentence, as the pipeline returns them."""
        prepared = self._prepare(text)
        if not prepared.strip():
            return []
        doc = self.pipeline(prepared)
        return [[tok.text for tok in sent.tokens] for sent in doc.sentences]

    def tokenize(self, text: str) -> list[str]:
        hit = self._memo.get(text)
        if hit is None:
            hit = tuple(tok for sent in self.sentences(text) for tok in sent)
            self._remember(text, hit)
        return list(hit)

    def _remember(self, text: str, tokens: tuple[str, ...]) -> None:
        if len(self._memo) >= self.memo_size:
            self._memo.clear()
        self._memo[text] = tokens

    def tokenize_many(self, texts: Sequence[str], batch_size: int = 512) -> list[list[str]]:
        """Tokenise many texts: unseen distinct texts go through stanza's bulk
        processing, one pipeline call per batch."""
        from stanza import Document

        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            prepared = [self._prepare(t) for t in chunk]
            live = [i for i, p in enumerate(prepared) if p.strip()]
            docs = self.pipeline.bulk_process([Document([], text=prepared[i]) for i in live]) if live else []
            results: dict[int, tuple[str, ...]] = {
                i: tuple(tok.text for sent in doc.sentences for tok in sent.tokens) for i, doc in zip(live, docs)
            }
            for i, text in enumerate(chunk):
                self._remember(text, results.get(i, ()))
        return [list(self._memo[t]) if t in self._memo else self.tokenize(t) for t in texts]


def _quiet_jieba() -> None:
    try:
        import jieba

        jieba.setLogLevel(logging.WARNING)
    except ImportError as exc:  # pragma: no cover - jieba is a core dependency
        raise MPMError("Chinese tokenisation needs jieba: pip install jieba") from exc


def _build_full(stanza_code: str, model_dir: Path) -> Any:
    import stanza

    return stanza.Pipeline(stanza_code, dir=str(model_dir), processors="tokenize",
                           download_method=None, logging_level="ERROR", use_gpu=False)


def _build_offline(stanza_code: str) -> tuple[str, Any]:
    import stanza

    common = dict(dir=str(offline_dir()), processors="tokenize", download_method=None,
                  allow_unknown_language=True, logging_level="ERROR", use_gpu=False)
    if stanza_code.lower() in _JIEBA_LANGS:
        _quiet_jieba()
        return ROUTE_JIEBA, stanza.Pipeline(stanza_code.lower(), tokenize_with_jieba=True, **common)
    return ROUTE_PRETOKENIZED, stanza.Pipeline(stanza_code, tokenize_pretokenized=True, **common)


def get_tokenizer(code: str, *, model_dir: str | os.PathLike[str] | None = None,
                  offline: bool = False) -> StanzaTokenizer:
    """The cached pipeline for ``code`` (a stanza language code, e.g. ``"zh"``).

    ``model_dir`` overrides the stanza resources directory; ``offline=True``
    skips the full pipeline even where models are installed (reproducible
    numbers across machines)."""
    directory = None if offline else Path(model_dir) if model_dir else resources_dir()
    key = (code, str(directory) if directory else "offline")
    with _lock:
        tok = _cache.get(key)
        if tok is not None:
            return tok
        note = ""
        if directory is not None:
            if models_listed(code, directory):
                try:
                    tok = StanzaTokenizer(code, ROUTE_FULL, _build_full(code, directory))
                except Exception as exc:  # damaged or partial download: stay usable offline
                    note = f"full stanza pipeline in {directory} failed ({type(exc).__name__}: {exc}); offline route used"
                    _log.warning("%s: %s", code, note)
        if tok is None:
            route, pipeline = _build_offline(code)
            tok = StanzaTokenizer(code, route, pipeline, note)
        _cache[key] = tok
        return tok


def segment(segmenter: Callable[[str], Sequence[str]], text: str) -> list[str]:
    """Lower-cased words of ``text`` from a pack's own segmenter, sentence by
    sentence (the rule's sentence split), blanks dropped."""
    return [w.lower() for sentence in rule_split.split_sentences(text) for w in segmenter(sentence) if w.strip()]


def tokenize(code: str, text: str) -> list[str]:
    return get_tokenizer(code).tokenize(text)


def tokenize_many(code: str, texts: Sequence[str]) -> list[list[str]]:
    return get_tokenizer(code).tokenize_many(texts)


def route(code: str) -> str:
    """Which route ``tokenize(code, ...)`` takes on this machine."""
    return get_tokenizer(code).route


def clear_cache(codes: Iterable[str] | None = None) -> None:
    """Forget built pipelines (all, or those of ``codes``), e.g. after a download."""
    with _lock:
        wanted = set(codes) if codes is not None else None
        for key in list(_cache):
            if wanted is None or key[0] in wanted:
                del _cache[key]


def _stanza_code_for(code: str) -> str:
    """A registered pack's stanza code (aliases resolved); unknown codes are an error."""
    from ..plugins import get_registry

    reg = get_registry().get("language", code)  # raises with "did you mean" for typos
    pack = reg.load_factory()()
    return getattr(pack, "stanza_code", None) or pack.code


def download_models(code: str, model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Download stanza's tokenizer models for an installed language (needs a network).

    Used by ``mpm lang download CODE``; afterwards ``tokenize`` takes the
    ``stanza-full`` route. Returns the directory the models went to."""
    stanza_code = _stanza_code_for(code)
    target = Path(model_dir) if model_dir else resources_dir()
    import stanza

    try:
        stanza.download(stanza_code, model_dir=str(target), processors="tokenize", logging_level="INFO")
    except Exception as exc:
        raise MPMError(
            f"could not download stanza's tokenizer for '{stanza_code}' into {target} "
            f"({type(exc).__name__}: {exc}). Tokenisation keeps working through the offline route."
        ) from None
    clear_cache([stanza_code])
    if model_dir and os.environ.get("STANZA_RESOURCES_DIR") != str(target):
        sys.stderr.write(f"Models are in {target}; set STANZA_RESOURCES_DIR={target} so that MPM uses them.\n")
    return target
