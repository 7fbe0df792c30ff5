"""A KV cache layer that appends in place instead of concatenating.

transformers' ``DynamicLayer`` grows the cache with ``torch.cat`` every decode
step, so each step allocates and copies the whole cache of every layer: with 16
rows of ~450 tokens on a CPU that copy was 60% of a decode step (measured with
``benchmarks/bench_serve.py``'s small stack). :class:`GrowingLayer` keeps the
keys and values in buffers with spare room along the sequence and writes a new
step into that room; ``keys``/``values`` are views of the filled part, so
everything that reads or replaces them (attention, ``reorder_cache``, the
plugin's ``merge_decode_states``) works unchanged.

Decode states stay immutable as the plugin promises: a layer copied with
``copy.copy`` shares its buffer, and only the copy whose length is the buffer's
written length (its frontier) may append in place; any other (an older state
decoded a second time, a beam branch) copies first, as ``DynamicLayer`` would.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

MIN_SPARE = 64  # tokens of room added at least when a buffer grows


class GrowingLayer(DynamicLayer):
    """``DynamicLayer`` whose update writes into spare room (amortised O(step) instead of O(cache))."""

    def __init__(self, **kwargs) -> None:
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        self._length = 0
        self._frontier = [0]  # shared by every copy of this layer that uses the same buffers
        super().__init__(**kwargs)

    # keys/values are the filled part of the buffers; assigning replaces the buffers
    @property
    def keys(self) -> torch.Tensor | None:
        buffer = self._key_buffer
        return buffer if buffer is None or buffer.dim() < 3 else buffer[..., : self._length, :]

    @keys.setter
    def keys(self, tensor: torch.Tensor | None) -> None:
        self._key_buffer = tensor
        self._length = 0 if tensor is None or tensor.dim() < 3 else tensor.shape[-2]
        self._frontier = [self._length]

    @property
    def values(self) -> torch.Tensor | None:
        buffer = self._value_buffer
        return buffer if buffer is None or buffer.dim() < 3 else buffer[..., : self._length, :]

    @values.setter
    def values(self, tensor: torch.Tensor | None) -> None:
        self._value_buffer = tensor  # the keys' setter keeps the length: both are assigned together

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, added = self._length, key_states.shape[-2]
        buffers = self._key_buffer, self._value_buffer
        fits = (buffers[0] is not None and buffers[0].dim() == 4 and buffers[1].dim() == 4
                and self._frontier[0] == start and start + added <= buffers[0].shape[-2]
                and buffers[0].shape[:2] == key_states.shape[:2] and buffers[1].shape[:2] == value_states.shape[:2])
        if not fits:
            room = start + added + max(MIN_SPARE, (start + added) // 2)
            grown = []
            for buffer, states in zip(buffers, (key_states, value_states)):
                new = states.new_empty(*states.shape[:2], room, states.shape[-1])
                if start:
                    new[..., :start, :] = buffer[..., :start, :]
                grown.append(new)
            self._key_buffer, self._value_buffer = grown
            self._frontier = [start]
        self._key_buffer[..., start: start + added, :] = key_states
        self._value_buffer[..., start: start + added, :] = value_states
        self._length = start + added
        self._frontier[0] = self._length
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select rows of the whole buffers, room included (a row leaving the
        server's batch then costs no regrowth at the next step)."""
        if self.get_seq_length() == 0:
            return
        length = self._length
        index = beam_idx.to(self._key_buffer.device)
        self._key_buffer = self._key_buffer.index_select(0, index)
        self._value_buffer = self._value_buffer.index_select(0, index)
        self._length, self._frontier = length, [length]


def use_growing_layers(cache) -> None:
    """Swap the plain dynamic layers of a fresh ``DynamicCache`` for :class:`GrowingLayer`
    (sliding-window and other layer kinds are left alone)."""
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer and not layer.is_initialized else layer
                    for layer in cache.layers]
