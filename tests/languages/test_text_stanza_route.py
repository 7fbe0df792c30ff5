"""The stanza route: offline pipelines (jieba, pretokenized), the full pipeline
from a tiny stanza tokenizer saved in stanza's own format, fallbacks, downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpm_framework.errors import MPMError, UnknownComponentError
from mpm_framework.text import rule_split, stanza_route
from mpm_framework.text.stanza_route import ROUTE_FULL, ROUTE_JIEBA, ROUTE_PRETOKENIZED


@pytest.fixture(scope="module", autouse=True)
def isolated_dirs(tmp_path_factory):
    """An empty MPM cache and an empty stanza resources directory for this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPM_CACHE_DIR", str(tmp_path_factory.mktemp("mpm-cache")))
        mp.setenv("STANZA_RESOURCES_DIR", str(tmp_path_factory.mktemp("stanza-empty")))
        stanza_route.clear_cache()
        yield
    stanza_route.clear_cache()


def _tiny_stanza_tokenizer(model_dir: Path, lang: str) -> None:
    """A tiny stanza tokenizer saved by stanza's own Trainer, with the
    resources.json entry stanza's Pipeline reads — what a download leaves
    behind, at toy size. Its classifier is set so that every character ends a
    token and no character ends a sentence, which makes its output known."""
    import torch
    from stanza.models.tokenization.trainer import Trainer
    from stanza.models.tokenization.vocab import Vocab
    from stanza.models.tokenizer import DEFAULT_FEAT_FUNCS, parse_args

    args = parse_args(["--lang", lang, "--shorthand", f"{lang}_tiny"])
    args.update(feat_funcs=DEFAULT_FEAT_FUNCS, feat_dim=len(DEFAULT_FEAT_FUNCS), num_dict_feat=0, emb_dim=8,
                hidden_dim=8, conv_res=None, hierarchical=False, use_mwt=False, rnn_layers=1, use_dictionary=False)
    chars = sorted(set("abcdefghijklmnopqrstuvwxyzäöüßéèàABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'-0123456789"))
    vocab = Vocab(data=[[(c, 0) for c in chars]], lang=lang)
    vocab.build_vocab()
    args["vocab_size"] = len(vocab)
    torch.manual_seed(0)
    (model_dir / lang / "tokenize").mkdir(parents=True, exist_ok=True)
    trainer = Trainer(args=args, vocab=vocab, device="cpu")
    with torch.no_grad():
        for clf, bias in ((trainer.model.tok_clf, 20.0), (trainer.model.sent_clf, -20.0)):
            clf.weight.zero_()
            clf.bias.fill_(bias)
    trainer.save(str(model_dir / lang / "tokenize" / "default.pt"))
    resources = model_dir / "resources.json"
    data = json.loads(resources.read_text()) if resources.exists() else {}
    data[lang] = {"lang_name": lang, "tokenize": {"default": {}}, "default_processors": {"tokenize": "default"},
                  "packages": {"default": {"tokenize": "default"}}}
    resources.write_text(json.dumps(data))


ZH = "左边有一个红色的小圆形。右边有两个三角形！"


def test_chinese_offline_route_is_stanzas_jieba_tokenizer():
    import jieba

    tok = stanza_route.get_tokenizer("zh")
    assert tok.route == ROUTE_JIEBA and tok.note == ""
    assert tok.sentences(ZH) == [["左边", "有", "一个", "红色", "的", "小", "圆形", "。"],
                                 ["右边", "有", "两个", "三角形", "！"]]
    # parity with jieba itself (stanza wraps it; whitespace is dropped)
    assert tok.tokenize(ZH) == [w for w in jieba.cut(ZH) if w.strip()]
    assert stanza_route.route("zh") == ROUTE_JIEBA


@pytest.mark.parametrize(("code", "text"), [
    ("de", "Links ist ein kleiner roter Kreis. Oben ist ein großes Quadrat!"),
    ("fr", "L'image montre-t-elle un carré ? Oui, à gauche."),
    ("en", "I don't see it. It's on the left."),
    ("es", "¿Qué hay a la izquierda? Un círculo rojo."),
    ("sw", "Kuna duara jekundu upande wa kushoto."),  # a language stanza has no resources for
])
def test_pretokenized_route_returns_the_rule_split(code, text):
    tok = stanza_route.get_tokenizer(code)
    assert tok.route == ROUTE_PRETOKENIZED
    assert tok.sentences(text) == rule_split.split(text, code)


def test_offline_resources_file_is_empty_and_in_the_mpm_cache(tmp_path):
    directory = stanza_route.offline_dir()
    assert directory.parent == stanza_route.cache_dir()
    assert json.loads((directory / "resources.json").read_text()) == {}


@pytest.mark.parametrize("code", ["zh", "fr"])
def test_bulk_tokenisation_equals_one_by_one(code):
    texts = ["", "   ", ZH, "Il y a un petit cercle rouge à gauche et un grand carré bleu en haut.",
             "Deux. Trois !", ZH, "左边。"] + [f"Texte numéro {i}." for i in range(40)]
    one_by_one = [stanza_route.get_tokenizer(code).sentences(t) for t in texts]
    flat = [[w for s in sents for w in s] for sents in one_by_one]
    stanza_route.clear_cache([code])  # fresh pipeline and memo: the batch really goes through stanza
    assert stanza_route.tokenize_many(code, texts) == flat
    assert [stanza_route.tokenize(code, t) for t in texts] == flat


def test_full_route_loads_a_tiny_stanza_model(tmp_path):
    _tiny_stanza_tokenizer(tmp_path, "de")
    tok = stanza_route.get_tokenizer("de", model_dir=tmp_path)
    assert tok.route == ROUTE_FULL and tok.note == ""
    model_path = tok.pipeline.processors["tokenize"].config["model_path"]
    assert Path(model_path) == tmp_path / "de" / "tokenize" / "default.pt"
    texts = ["Ein roter Kreis. Zwei Formen!", "Oben ist ein Quadrat."]
    # the network was set to end a token after every character: its tokens are the characters
    for text, tokens in zip(texts, tok.tokenize_many(texts)):
        assert tokens == [c for c in text if not c.isspace()]
        assert tokens == tok.tokenize(text)
    assert len(tok.sentences(texts[0])) == 1  # ... and never to end a sentence
    # the same language without model_dir stays offline (the default resources dir is empty)
    assert stanza_route.route("de") == ROUTE_PRETOKENIZED


def test_offline_flag_skips_installed_models(tmp_path):
    _tiny_stanza_tokenizer(tmp_path, "fr")
    assert stanza_route.get_tokenizer("fr", model_dir=tmp_path).route == ROUTE_FULL
    assert stanza_route.get_tokenizer("fr", model_dir=tmp_path, offline=True).route == ROUTE_PRETOKENIZED


def test_a_listed_but_missing_model_falls_back_offline_and_says_why(tmp_path):
    (tmp_path / "resources.json").write_text(json.dumps(
        {"fr": {"tokenize": {"gsd": {}}, "default_processors": {"tokenize": "gsd"}, "packages": {}}}))
    tok = stanza_route.get_tokenizer("fr", model_dir=tmp_path)
    assert tok.route == ROUTE_PRETOKENIZED
    assert "failed" in tok.note and str(tmp_path) in tok.note
    assert tok.tokenize("L'image.") == ["L'", "image", "."]


def test_models_listed_follows_aliases_and_tolerates_bad_files(tmp_path):
    res = tmp_path / "resources.json"
    assert not stanza_route.models_listed("zh", tmp_path)
    res.write_text(json.dumps({"zh": {"alias": "zh-hans"},
                               "zh-hans": {"default_processors": {"tokenize": "gsdsimp"}},
                               "de": {"lang_name": "German"}}))
    assert stanza_route.models_listed("zh", tmp_path)
    assert not stanza_route.models_listed("de", tmp_path)  # listed, but without a tokenizer
    assert not stanza_route.models_listed("fr", tmp_path)
    res.write_text("{not json")
    assert not stanza_route.models_listed("zh", tmp_path)


def test_download_models_then_the_full_route(tmp_path, monkeypatch):
    """``mpm lang download``: stanza.download is replaced by a local stand-in
    (no network here) that leaves what a real download leaves."""
    import stanza

    calls = []

    def fake_download(lang, model_dir, processors, logging_level):
        calls.append((lang, model_dir, processors))
        _tiny_stanza_tokenizer(Path(model_dir), lang)

    monkeypatch.setattr(stanza, "download", fake_download)
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path))
    stanza_route.clear_cache()
    assert stanza_route.route("en") == ROUTE_PRETOKENIZED
    assert stanza_route.download_models("english") == tmp_path  # an alias of a registered pack
    assert calls == [("en", str(tmp_path), "tokenize")]
    assert stanza_route.route("en") == ROUTE_FULL  # the cached offline pipeline was dropped
    stanza_route.clear_cache()


def test_download_errors_are_clear(tmp_path, monkeypatch):
    import stanza

    with pytest.raises(UnknownComponentError, match="Did you mean 'english'"):
        stanza_route.download_models("englsh", tmp_path)

    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(stanza, "download", offline)
    with pytest.raises(MPMError, match=r"could not download stanza's tokenizer for 'en'.*offline route"):
        stanza_route.download_models("en", tmp_path)


def test_lang_download_command_reports_errors_without_traceback(tmp_path, monkeypatch):
    import stanza
    from click.testing import CliRunner

    from mpm_framework.cli.main import cli

    monkeypatch.setattr(stanza, "download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    result = CliRunner().invoke(cli, ["lang", "download", "en", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "could not download stanza's tokenizer for 'en'" in result.output
    assert "Traceback" not in result.output
