"""Translating instruction data into a target language.

``Translator`` is the pluggable part: :class:`Seq2SeqTranslator` runs a local
sequence-to-sequence MT checkpoint through transformers (Marian, T5, mBART,
NLLB, M2M100), :class:`PivotLLMTranslator` asks the pivot LLM itself. The file
helpers keep the record structure: LLaVA conversations keep their turns and
speakers, ``<image>`` markers stay exactly where they were (only the text
around them is translated), other fields pass through, and ``lang`` becomes the
target language.
"""

from __future__ import annotations

import copy
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..contracts.prompt import IMAGE_MARKER, Turn
from ..errors import DataError
from .samples import TEXT_FIELDS


class Translator(ABC):
    """Texts in the source language -> texts in the target language, in order."""

    @abstractmethod
    def translate(self, texts: list[str]) -> list[str]:
        ...


class Seq2SeqTranslator(Translator):
    """A local seq2seq MT checkpoint (``save_pretrained`` folder).

    Multilingual models need language codes: mBART ``src_code="en_XX"``,
    ``tgt_code="zh_CN"``; NLLB ``eng_Latn`` / ``zho_Hans``; M2M100 ``en`` / ``zh``.
    T5 wants a ``prefix`` such as ``"translate English to German: "``."""

    def __init__(self, path: str | Path, *, src_code: str | None = None, tgt_code: str | None = None,
                 prefix: str = "", num_beams: int = 1, max_new_tokens: int = 256, max_input_tokens: int = 512,
                 device: str = "cpu") -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if not Path(path).is_dir():
            raise DataError(f"MT checkpoint folder not found: {path}")
        from ..security import allow_remote_code

        remote = allow_remote_code(path, local=True)  # shipped code only with --trust-remote-code
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=remote)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(str(path), trust_remote_code=remote).to(device).eval()
        if src_code:
            self.tokenizer.src_lang = src_code
        self.forced_bos = None
        if tgt_code:
            if hasattr(self.tokenizer, "tgt_lang"):
                self.tokenizer.tgt_lang = tgt_code
            self.forced_bos = self.tokenizer.convert_tokens_to_ids(tgt_code)
        self.prefix, self.num_beams, self.max_new_tokens = prefix, num_beams, max_new_tokens
        self.max_input_tokens, self.device = max_input_tokens, device

    def translate(self, texts: list[str]) -> list[str]:
        import torch

        if not texts:
            return []
        enc = self.tokenizer([self.prefix + t for t in texts], return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_input_tokens).to(self.device)
        kwargs: dict[str, Any] = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens}
        if self.forced_bos is not None:
            kwargs["forced_bos_token_id"] = self.forced_bos
        with torch.no_grad():
            out = self.model.generate(**enc, **kwargs)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


class PivotLLMTranslator(Translator):
    """The pivot LLM translates, prompted in its own chat format."""

    PROMPT = ("Translate the following {source} text into {target}. Reply with the translation only.\n\n{text}")

    def __init__(self, llm: Any, target: str, source: str = "English", generation: Any = None,
                 prompt: str | None = None) -> None:
        from ..inference.generation import GenerationConfig

        self.llm, self.source, self.target = llm, source, target
        self.generation = generation or GenerationConfig(max_new_tokens=256)
        self.prompt = prompt or self.PROMPT

    def translate(self, texts: list[str]) -> list[str]:
        import torch

        from ..inference.generation import decode_answer, generate

        if not texts:
            return []
        llm = self.llm
        device = next(llm.parameters()).device
        encodings = [llm.format_prompt([Turn("user", self.prompt.format(source=self.source, target=self.target,
                                                                      text=t))], 0, add_generation_prompt=True)
                     for t in texts]
        batch = {k: v.to(device) for k, v in llm.collate(encodings, padding_side="left").items()}
        was_training = llm.training
        llm.eval()
        try:
            with torch.no_grad():
                ids = generate(llm, llm.embed_tokens(batch["input_ids"]), batch, self.generation)
        finally:
            llm.train(was_training)
        return [decode_answer(llm, row, self.generation.stop_strings).strip() for row in ids]


# -- records and files ------------------------------------------------------------------


def _pieces(value: str) -> list[tuple[str, str, str]]:
    """(leading space, text, trailing space) around and between ``<image>`` markers."""
    out = []
    for part in value.split(IMAGE_MARKER):
        core = part.strip()
        if core:
            start = part.index(core)
            out.append((part[:start], core, part[start + len(core):]))
        else:
            out.append((part, "", ""))
    return out


def _texts(record: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    values: list[str] = []
    if isinstance(record.get("conversations"), list):
        values += [t["value"] for t in record["conversations"] if isinstance(t, dict) and isinstance(t.get("value"), str)]
    else:
        values += [record[f] for f in fields if isinstance(record.get(f), str)]
    return [core for v in values for _, core, _ in _pieces(v) if core]


def _rebuild(value: str, table: dict[str, str]) -> str:
    return IMAGE_MARKER.join(lead + (table[core] if core else "") + trail for lead, core, trail in _pieces(value))


def translate_records(records: list[dict[str, Any]], translator: Translator, target: str, *,
                      fields: tuple[str, ...] = TEXT_FIELDS, batch_size: int = 16,
                      progress: bool = False) -> list[dict[str, Any]]:
    """Translated copies of ``records`` (each distinct text translated once)."""
    unique = list(dict.fromkeys(t for r in records for t in _texts(r, fields)))
    table: dict[str, str] = {}
    starts: Iterable[int] = range(0, len(unique), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, total=(len(unique) + batch_size - 1) // batch_size, desc="translating",
                      unit="batch")
    for start in starts:
        chunk = unique[start: start + batch_size]
        out = translator.translate(chunk)
        if len(out) != len(chunk):
            raise DataError(f"the translator returned {len(out)} texts for {len(chunk)}")
        table.update(zip(chunk, out, strict=True))
    result = []
    for record in records:
        new = copy.deepcopy(record)
        if isinstance(new.get("conversations"), list):
            for turn in new["conversations"]:
                if isinstance(turn, dict) and isinstance(turn.get("value"), str):
                    turn["value"] = _rebuild(turn["value"], table)
        else:
            for f in fields:
                if isinstance(new.get(f), str):
                    new[f] = _rebuild(new[f], table)
        new["lang"] = target
        result.append(new)
    return result


def read_records(path: Path) -> tuple[list[dict[str, Any]], str, list[str]]:
    """(records, "json" | "jsonl", problems) of an instruction / pairs file."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from None
        return [r for r in data if isinstance(r, dict)], "json", [
            f"{path.name}[{i}]: not an object" for i, r in enumerate(data) if not isinstance(r, dict)]
    records, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{n}: {exc.msg}")
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            problems.append(f"{path.name}:{n}: not an object")
    return records, "jsonl", problems


def translate_file(source: str | Path, output: str | Path, translator: Translator, target: str, *,
                   fields: tuple[str, ...] = TEXT_FIELDS, batch_size: int = 16, limit: int | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Translate a JSON / JSON-lines file; the output keeps the input's layout."""
    source, output = Path(source), Path(output)
    if not source.is_file():
        raise DataError(f"input file not found: {source}")
    records, layout, problems = read_records(source)
    if limit is not None:
        records = records[:limit]
    translated = translate_records(records, translator, target, fields=fields, batch_size=batch_size,
                                   progress=progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        if layout == "json":
            json.dump(translated, f, ensure_ascii=False, indent=1)
        else:
            for record in translated:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, output)
    return {"records": len(translated), "skipped": len(problems), "problems": problems[:5], "output": str(output)}
