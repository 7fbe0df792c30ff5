"""The alignment probe: does the pivot LLM keep a sentence and its translation close?

MPM rests on it (the paper's first check): if the LLM maps a Chinese sentence
near its English counterpart, vision aligned to English transfers. For parallel
sentences the probe mean-pools each layer's hidden states over the sentence's
tokens (``llm.encode_text`` then ``forward(output_hidden_states=True)``) and
reports per layer:

- retrieval accuracy: the share of English sentences whose nearest target
  sentence by cosine is their translation (and the reverse direction);
- the mean cosine of translation pairs, beside the mean cosine of non-pairs,
  which shows how much of the similarity is just the space's anisotropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..contracts.llm import PivotLLM
from ..errors import DataError


@dataclass
class LayerAlignment:
    layer: int  # 0 = the input embeddings, i = output of block i
    retrieval_en_to_target: float
    retrieval_target_to_en: float
    mean_cosine: float  # translation pairs
    mean_cosine_other: float  # all non-translation pairs


@dataclass
class AlignmentResult:
    lang: str
    num_pairs: int
    layers: list[LayerAlignment]

    @property
    def best_layer(self) -> LayerAlignment:
        return max(self.layers, key=lambda r: (r.retrieval_en_to_target, r.mean_cosine - r.mean_cosine_other))

    def to_dict(self) -> dict:
        return {"lang": self.lang, "num_pairs": self.num_pairs, "best_layer": self.best_layer.layer,
                "layers": [asdict(r) for r in self.layers]}


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def pooled_hidden_states(llm: PivotLLM, sentences: Sequence[str], batch_size: int = 16,
                         progress: bool = False) -> torch.Tensor:
    """(num_layers + 1, N, hidden) float32 mean-pooled hidden states, padding excluded."""
    device = next(llm.parameters()).device
    chunks = range(0, len(sentences), batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="encoding", unit="batch", total=len(chunks))
    pooled = []
    was_training = llm.training
    llm.eval()
    try:
        with torch.no_grad():
            for start in chunks:
                encodings = [llm.encode_text(s) for s in sentences[start: start + batch_size]]
                batch = _to_device(llm.collate(encodings, padding_side="right"), device)
                out = llm(llm.embed_tokens(batch["input_ids"]), batch, output_hidden_states=True)
                if not out.hidden_states:
                    raise DataError(f"{type(llm).__name__} returned no hidden states; the probe needs them")
                mask = batch["attention_mask"].bool()
                if batch.get("image_mask") is not None:
                    mask &= ~batch["image_mask"].bool()
                weights = mask.float()[..., None]
                layers = [(h.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0) for h in out.hidden_states]
                pooled.append(torch.stack(layers).cpu())
    finally:
        llm.train(was_training)
    return torch.cat(pooled, dim=1)


def alignment_from_states(en: torch.Tensor, target: torch.Tensor, lang: str) -> AlignmentResult:
    """Per-layer metrics from pooled states (L, N, D) of sentence pairs in the same order."""
    if en.shape != target.shape:
        raise ValueError(f"pooled states disagree: {tuple(en.shape)} vs {tuple(target.shape)}")
    n = en.shape[1]
    eye = torch.eye(n, dtype=torch.bool)
    layers = []
    for layer in range(en.shape[0]):
        sim = F.normalize(en[layer], dim=-1) @ F.normalize(target[layer], dim=-1).T
        truth = torch.arange(n)
        layers.append(LayerAlignment(
            layer=layer,
            retrieval_en_to_target=float((sim.argmax(1) == truth).float().mean()),
            retrieval_target_to_en=float((sim.argmax(0) == truth).float().mean()),
            mean_cosine=float(sim.diagonal().mean()),
            mean_cosine_other=float(sim[~eye].mean()) if n > 1 else float("nan"),
        ))
    return AlignmentResult(lang, n, layers)


def alignment_probe(llm: PivotLLM, english: Sequence[str], target: Sequence[str], lang: str,
                    batch_size: int = 16, progress: bool = False) -> AlignmentResult:
    """Retrieval accuracy and cosine per layer for parallel ``english``/``target`` sentences."""
    if len(english) != len(target):
        raise DataError(f"{len(english)} English sentences but {len(target)} {lang} sentences")
    if len(english) < 2:
        raise DataError("the alignment probe needs at least 2 sentence pairs")
    en = pooled_hidden_states(llm, english, batch_size, progress)
    xx = pooled_hidden_states(llm, target, batch_size, progress)
    return alignment_from_states(en, xx, lang)


def plot_alignment(results: Sequence[AlignmentResult], path: str | Path) -> Path:
    """A PNG of retrieval accuracy and pair cosine by layer, one line per language."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (ax_ret, ax_cos) = plt.subplots(1, 2, figsize=(10, 4))
    for result in results:
        layers = [r.layer for r in result.layers]
        ax_ret.plot(layers, [r.retrieval_en_to_target for r in result.layers], marker="o", label=f"en→{result.lang}")
        ax_cos.plot(layers, [r.mean_cosine for r in result.layers], marker="o", label=f"en–{result.lang} pairs")
        ax_cos.plot(layers, [r.mean_cosine_other for r in result.layers], linestyle="--",
                    label=f"en–{result.lang} non-pairs")
    ax_ret.set(title="Translation retrieval (nearest by cosine)", xlabel="layer", ylabel="accuracy", ylim=(0, 1.05))
    ax_cos.set(title="Mean cosine of pooled hidden states", xlabel="layer", ylabel="cosine")
    for ax in (ax_ret, ax_cos):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
