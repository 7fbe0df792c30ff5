"""The alignment probe: pooling, per-layer metrics by hand, the plot."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mpm_framework.errors import DataError
from mpm_framework.evaluation.alignment import (
    alignment_from_states,
    alignment_probe,
    plot_alignment,
    pooled_hidden_states,
)
from mpm_framework.testing import TinyLLM, TinyLLMConfig


@pytest.fixture(scope="module")
def llm():
    return TinyLLM(TinyLLMConfig(num_layers=2))


def test_metrics_by_hand():
    en = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    target = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [1.0, 0.9]]])
    row = alignment_from_states(en, target, "xx").layers[0]
    cos_pair3 = (1 * 1 + 1 * 0.9) / (2**0.5 * (1 + 0.81) ** 0.5)
    assert row.retrieval_en_to_target == 1.0 and row.retrieval_target_to_en == 1.0
    assert row.mean_cosine == pytest.approx((1 + 1 + cos_pair3) / 3)
    # the six non-pairs: (e1,t2)=0 (e1,t3) (e2,t1)=0 (e2,t3) (e3,t1) (e3,t2)
    c13 = 1 / (1 + 0.81) ** 0.5
    c23 = 0.9 / (1 + 0.81) ** 0.5
    c31 = c32 = 1 / 2**0.5
    assert row.mean_cosine_other == pytest.approx((0 + c13 + 0 + c23 + c31 + c32) / 6)
    swapped = alignment_from_states(en[:, :2], target[:, [1, 0]], "xx").layers[0]
    assert swapped.retrieval_en_to_target == 0.0 and swapped.mean_cosine == pytest.approx(0.0)


def test_pooling_ignores_padding(llm):
    sentences = ["a short one", "a considerably longer sentence than the first"]
    together = pooled_hidden_states(llm, sentences, batch_size=2)
    alone = torch.cat([pooled_hidden_states(llm, [s]) for s in sentences], dim=1)
    assert together.shape == (llm.num_layers + 1, 2, llm.hidden_size)
    assert torch.allclose(together, alone, atol=1e-5)
    # and it is the plain mean over the sentence's tokens of every layer
    enc = llm.encode_text(sentences[0])
    batch = llm.collate([enc])
    with torch.no_grad():
        states = llm(llm.embed_tokens(batch["input_ids"]), batch, output_hidden_states=True).hidden_states
    assert torch.allclose(together[:, 0], torch.stack([h[0].mean(0) for h in states]), atol=1e-5)


def test_probe_on_identical_sentences_is_perfect(llm):
    sentences = ["red circle", "two blue squares", "a yellow triangle at the top"]
    result = alignment_probe(llm, sentences, sentences, "en", batch_size=2)
    assert len(result.layers) == llm.num_layers + 1
    for row in result.layers:
        assert row.retrieval_en_to_target == 1.0 and row.mean_cosine == pytest.approx(1.0, abs=1e-5)
        assert row.mean_cosine_other < 1.0
    with pytest.raises(DataError, match="at least 2"):
        alignment_probe(llm, ["x"], ["y"], "de")


def test_plot_is_a_png(llm, tmp_path):
    result = alignment_probe(llm, ["red circle", "blue square"], ["roter Kreis", "blaues Quadrat"], "de")
    path = plot_alignment([result], tmp_path / "plots" / "alignment.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 500
