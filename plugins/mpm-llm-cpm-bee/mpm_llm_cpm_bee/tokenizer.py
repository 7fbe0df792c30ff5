"""The CPM-Bee tokenizer (torch-free).

Greedy longest match over the vocabulary file. ``<`` opens a special token
(``<ans>``, ``<unk>``, ``<mask_0>``) and is written ``<<`` in plain text.
Special tokens the vocabulary lacks and runs of characters it lacks are not
errors: they become *variants* of a base token (``<mask_3>`` -> ``<mask>``,
"😀" -> ``<unk>``) told apart by a sub index that drives the rotary "sub"
embedding. Sub indices count distinct variants of one base token in order of
first appearance within a sample (:class:`VariantTable`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mpm_framework.errors import DataError

NEWLINE_TOKEN = "</n>"
SPACE_TOKEN = "</_>"
# The head of the official vocabulary, in its order (ids 0..10).
SPECIAL_HEAD = ("<pad>", "<unk>", "<mask>", "<sep>", NEWLINE_TOKEN, SPACE_TOKEN, "<s>", "</s>", "<root>", "<ans>",
                "<option>")


def escape(text: str) -> str:
    """Plain text -> tokenizer input (``<`` is written ``<<``)."""
    return text.replace("<", "<<")


def unescape(text: str) -> str:
    return text.replace("<<", "<")


def is_special(token: str) -> bool:
    return len(token) >= 2 and token.startswith("<") and token.endswith(">")


@dataclass
class Piece:
    text: str
    special: bool  # written as <name>
    known: bool  # in the vocabulary as is


@dataclass
class VariantTable:
    """Per-sample sub indices of variants (``<unk>`` strings, ``<name_k>`` tokens).

    ``subs[base][variant]`` is the sub index of ``variant``; the first variant of
    a base token gets 0, the next distinct one 1, and so on (the official
    conversion numbers them this way; sub 0 therefore coincides with the plain
    base token)."""

    subs: dict[str, dict[str, int]] = field(default_factory=dict)

    def sub(self, base: str, variant: str) -> int:
        table = self.subs.setdefault(base, {})
        if variant not in table:
            table[variant] = len(table)
        return table[variant]

    def variant(self, base: str, sub: int) -> str | None:
        for text, index in self.subs.get(base, {}).items():
            if index == sub:
                return text
        return None


def builtin_vocab() -> list[str]:
    """A test vocabulary laid out like the official one: the special head, ASCII,
    CJK punctuation, the whole CJK Unified Ideographs block (so Chinese text
    never falls back to ``<unk>``) and some frequent English pieces. Used when
    no ``vocab.txt`` is given; only meaningful for randomly initialised models."""
    tokens: list[str] = list(SPECIAL_HEAD)
    tokens += [chr(c) for c in range(33, 127)]
    tokens += list("、。〈〉《》【】！，：；？“”‘’（）…—·")
    tokens += [chr(c) for c in range(0x4E00, 0xA000)]
    words = ("the", "and", "ing", "ion", "er", "ed", "of", "to", "in", "is", "it", "th", "on", "an", "re", "at",
             "en", "es", "or", "ar", "image", "picture", "photo", "describe", "what", "color", "shape", "there",
             "red", "green", "blue", "yellow", "circle", "square", "triangle", "left", "right", "top", "bottom",
             "User", "AI", "question", "answer", "this", "that", "with", "are", "how", "many")
    seen = set(tokens)
    for word in words:
        if word not in seen:
            tokens.append(word)
            seen.add(word)
    return tokens


class CPMBeeTokenizer:
    """Tokenizer over an official ``vocab.txt`` (one token per line; ``</n>`` is
    the newline and ``</_>`` the space)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.encoder: dict[str, int] = {}
        for token in tokens:
            if token == "":
                continue
            if token in self.encoder:
                raise DataError(f"vocabulary lists '{token}' twice")
            self.encoder[token] = len(self.encoder)
        for required in ("<unk>", "<s>", "</s>", "<root>", "<ans>", NEWLINE_TOKEN, SPACE_TOKEN):
            if required not in self.encoder:
                raise DataError(f"vocabulary lacks the required token {required!r}")
        self.encoder["\n"] = self.encoder.pop(NEWLINE_TOKEN)
        self.encoder[" "] = self.encoder.pop(SPACE_TOKEN)
        self.decoder: dict[int, str] = {v: k for k, v in self.encoder.items()}
        self.special_ids = {v for k, v in self.encoder.items() if is_special(k)}
        self._max_len = max(len(t) for t in self.encoder)
        self.pad_id = self.encoder.get("<pad>", 0)
        self.unk_id = self.encoder["<unk>"]
        self.bos_id = self.encoder["<s>"]
        self.eos_id = self.encoder["</s>"]

    @classmethod
    def from_file(cls, path: str | Path) -> CPMBeeTokenizer:
        p = Path(path)
        if p.is_dir():
            p = p / "vocab.txt"
        if not p.is_file():
            raise DataError(f"CPM-Bee vocabulary not found: {p}")
        with open(p, encoding="utf-8", newline="\n") as f:
            # Only the line break is stripped: tokens may end in other whitespace.
            return cls(line[:-1] if line.endswith("\n") else line for line in f)

    @classmethod
    def builtin(cls) -> CPMBeeTokenizer:
        return cls(builtin_vocab())

    @staticmethod
    def write_vocab(tokens: Iterable[str], path: str | Path) -> None:
        """Write tokens in the official file format."""
        lines = [NEWLINE_TOKEN if t == "\n" else SPACE_TOKEN if t == " " else t for t in tokens]
        Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    def tokens(self) -> list[str]:
        """The vocabulary in id order, as the file writes it."""
        return [NEWLINE_TOKEN if t == "\n" else SPACE_TOKEN if t == " " else t
                for t in (self.decoder[i] for i in range(len(self.decoder)))]

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def __len__(self) -> int:
        return len(self.encoder)

    # -- splitting -----------------------------------------------------------------
    def _split_special(self, text: str) -> list[tuple[str, bool]]:
        """Text -> [(part, is_special)], resolving ``<<`` escapes."""
        parts: list[tuple[str, bool]] = []
        plain: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c != "<":
                plain.append(c)
                i += 1
                continue
            if i + 1 < n and text[i + 1] == "<":
                plain.append("<")
                i += 2
                continue
            end = text.find(">", i + 1)
            inner_lt = text.find("<", i + 1)
            if end < 0 or (0 <= inner_lt < end) or i + 1 == n:
                raise DataError(
                    f"invalid special token at position {i} of {text[:60]!r}: write a literal '<' as '<<'"
                )
            if plain:
                parts.append(("".join(plain), False))
                plain = []
            parts.append((text[i:end + 1], True))
            i = end + 1
        if plain:
            parts.append(("".join(plain), False))
        return parts

    def _longest(self, text: str, start: int) -> str | None:
        for length in range(min(self._max_len, len(text) - start), 0, -1):
            piece = text[start:start + length]
            if piece in self.encoder and self.encoder[piece] not in self.special_ids:
                return piece
        return None

    def pieces(self, text: str) -> list[Piece]:
        """Greedy longest match; consecutive unknown characters form one piece."""
        out: list[Piece] = []
        for part, special in self._split_special(text):
            if special:
                out.append(Piece(part, True, part in self.encoder))
                continue
            i, unknown = 0, []
            while i < len(part):
                piece = self._longest(part, i)
                if piece is None:
                    unknown.append(part[i])
                    i += 1
                    continue
                if unknown:
                    out.append(Piece("".join(unknown), False, False))
                    unknown = []
                out.append(Piece(piece, False, True))
                i += len(piece)
            if unknown:
                out.append(Piece("".join(unknown), False, False))
        return out

    # -- ids -----------------------------------------------------------------------
    def base_of(self, piece: Piece) -> str:
        """The vocabulary token a variant piece falls back to."""
        if not piece.special:
            return "<unk>"
        name = piece.text[1:-1].split("_", 1)[0]
        return f"<{name}>"

    def encode(self, text: str, variants: VariantTable | None = None) -> tuple[list[int], list[int]]:
        """Escaped text -> (ids, subs). ``variants`` numbers variants across the
        calls of one sample."""
        variants = variants if variants is not None else VariantTable()
        ids: list[int] = []
        subs: list[int] = []
        for piece in self.pieces(text):
            if piece.known:
                ids.append(self.encoder[piece.text])
                subs.append(0)
                continue
            base = self.base_of(piece)
            if base not in self.encoder:
                raise DataError(f"special token {piece.text} has no base token {base} in the vocabulary")
            ids.append(self.encoder[base])
            subs.append(variants.sub(base, piece.text))
        return ids, subs

    def decode(self, ids: Iterable[int], subs: Iterable[int] | None = None,
               variants: VariantTable | None = None) -> str:
        """(ids, subs) -> escaped text; variants are restored from ``variants``."""
        ids = list(ids)
        subs = list(subs) if subs is not None else [0] * len(ids)
        out: list[str] = []
        for token_id, sub in zip(ids, subs):
            token = self.decoder.get(int(token_id))
            if token is None:
                raise DataError(f"token id {token_id} is outside the vocabulary ({self.vocab_size})")
            if variants is not None and (token == "<unk>" or token_id in self.special_ids):
                variant = variants.variant(token, int(sub))
                if variant is not None:
                    out.append(variant if is_special(variant) and token != "<unk>" else escape(variant))
                    continue
            out.append(token if token_id in self.special_ids else escape(token))
        return "".join(out)

    def decode_plain(self, ids: Iterable[int]) -> str:
        """Ids -> plain text with special tokens dropped (generation output)."""
        return "".join(self.decoder[i] for i in ids if i in self.decoder and i not in self.special_ids)
