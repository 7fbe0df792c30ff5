"""CPM-Bee's structured input: a dictionary of segments -> token-level fields (torch-free).

The dictionary is a tree under an implicit root. A depth-first walk makes the
root, every key and every value a *segment*; each segment is ``<s>`` + its
tokens + ``</s>``, except the leaves under ``<ans>``, which drop ``</s>`` and are
the only causal (non-context) tokens. Attention between tokens of different
segments sees no token distance, only the tree relation of the two segments
(:func:`relation_bucket`); values under the top-level ``image`` key are the
image slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpm_framework.errors import DataError

from .tokenizer import CPMBeeTokenizer, VariantTable

ANSWER_KEY = "<ans>"
IMAGE_KEY = "image"


def relation_bucket(n_up: int, n_down: int, max_depth: int) -> int:
    """Relation bucket of two segments whose lowest common ancestor is ``n_up``
    levels above the query's segment and ``n_down`` levels above the key's.
    0 is "same segment"; 1 is reserved for "different sample or span"."""
    value = n_up * max_depth + n_down
    return 0 if value == 0 else value + 1


@dataclass
class _Node:
    text: str
    depth: int
    segment_id: int
    predict: bool = False  # a leaf under <ans>
    image: bool = False  # a leaf under the top-level image key
    children: list[_Node] = field(default_factory=list)


@dataclass
class StructuredEncoding:
    """Token-level fields of one sample (lists of equal length) plus its
    segment relation table (``num_segments`` x ``num_segments``, row = query)."""

    ids: list[int]
    subs: list[int]
    context: list[int]  # 1: visible both ways; 0: causal (answer tokens)
    segment: list[int]
    num_segments: int
    segment_rel: list[int]
    image_spans: list[tuple[int, int]]  # [begin, end) of the image slots
    answer_spans: list[tuple[int, int]]  # [begin, end) of each answer segment (from its <s>)
    variants: VariantTable

    def __len__(self) -> int:
        return len(self.ids)


def _build_tree(data: Any, nodes: list[_Node], depth: int, predict: bool, image: bool) -> list[_Node]:
    if isinstance(data, dict):
        children: list[_Node] = []
        for key, value in data.items():
            if not isinstance(key, str):
                raise DataError(f"CPM-Bee input keys must be strings, got {key!r}")
            node = _Node(key, depth, len(nodes))
            nodes.append(node)
            node.children = _build_tree(
                value, nodes, depth + 1,
                predict=predict or (depth == 1 and key == ANSWER_KEY),
                image=image or (depth == 1 and key == IMAGE_KEY),
            )
            children.append(node)
        return children
    if not isinstance(data, str):
        raise DataError(f"CPM-Bee input values must be strings or dicts, got {type(data).__name__}")
    leaf = _Node(data, depth, len(nodes), predict=predict, image=image)
    nodes.append(leaf)
    return [leaf]


def _relations(root: _Node, n: int, max_depth: int) -> list[int]:
    table = [0] * (n * n)

    def walk(node: _Node) -> list[tuple[int, int]]:
        seen = [(node.segment_id, node.depth)]
        for child in node.children:
            below = walk(child)
            for seg_q, depth_q in below:
                for seg_k, depth_k in seen:
                    up = min(depth_q - node.depth, max_depth - 1)
                    down = min(depth_k - node.depth, max_depth - 1)
                    table[seg_q * n + seg_k] = relation_bucket(up, down, max_depth)
                    table[seg_k * n + seg_q] = relation_bucket(down, up, max_depth)
            seen.extend(below)
        return seen

    walk(root)
    return table


def encode_structured(
    tokenizer: CPMBeeTokenizer, data: dict[str, Any], max_depth: int = 8,
    variants: VariantTable | None = None,
) -> StructuredEncoding:
    """Encode a segment dictionary. Texts must already be escaped (``<`` as ``<<``)."""
    if not isinstance(data, dict):
        raise DataError("CPM-Bee input must be a dictionary of segments")
    root = _Node("<root>", 0, 0)
    nodes = [root]
    root.children = _build_tree(data, nodes, 1, False, False)
    n = len(nodes)
    variants = variants if variants is not None else VariantTable()

    enc = StructuredEncoding([], [], [], [], n, _relations(root, n, max_depth), [], [], variants)
    for node in nodes:
        ids, subs = tokenizer.encode(node.text, variants)
        ids, subs = [tokenizer.bos_id, *ids], [0, *subs]
        if not node.predict:
            ids, subs = [*ids, tokenizer.eos_id], [*subs, 0]
        begin = len(enc.ids)
        enc.ids += ids
        enc.subs += subs
        enc.context += [0 if node.predict else 1] * len(ids)
        enc.segment += [node.segment_id] * len(ids)
        if node.image:
            enc.image_spans.append((begin + 1, begin + len(ids) - 1))
        if node.predict:
            enc.answer_spans.append((begin, begin + len(ids)))
    return enc
