"""``mpm lang``: add, list, prepare, scaffold and check language packs."""

from __future__ import annotations

import subprocess
import sys

import click

from ..errors import MPMError


@click.group()
def lang() -> None:
    """Language packs: list, install, download tokenizer models; scaffold (new) and check before publishing."""


@lang.command("list")
def list_languages() -> None:
    """Installed language packs."""
    from ..plugins import get_registry

    for reg in get_registry().entries["language"].values():
        click.echo(f"{reg.name:<6} {reg.description or ', '.join(reg.aliases)}  [{reg.plugin}]")


@lang.command("install")
@click.argument("codes", nargs=-1, required=True)
@click.option("--upgrade", "-U", is_flag=True, help="Upgrade if already installed.")
def install(codes: tuple[str, ...], upgrade: bool) -> None:
    """pip-install language packs into this environment: `mpm lang install de fr`.

    A code becomes the distribution `mpm-lang-CODE`; a path or a full
    requirement is passed to pip as it is."""
    reqs = [c if ("/" in c or c.startswith("mpm-") or "." in c) else f"mpm-lang-{c}" for c in codes]
    cmd = [sys.executable, "-m", "pip", "install", *(["--upgrade"] if upgrade else []), *reqs]
    click.echo("$ " + " ".join(cmd))
    if subprocess.call(cmd) != 0:
        raise MPMError(f"pip could not install {' '.join(reqs)} (see pip's message above)")


@lang.command("download")
@click.argument("code")
@click.option("--dir", "model_dir", default=None, help="stanza resources directory.")
def download(code: str, model_dir: str | None) -> None:
    """Download stanza's models for CODE (needs a network), for the full pipeline."""
    from ..text.stanza_route import download_models

    where = download_models(code, model_dir)
    click.echo(f"stanza models for {code} are in {where}")


@lang.command("new")
@click.argument("code")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default: ./mpm-lang-CODE).")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
@click.option("--translate-with", "mt_dir", type=click.Path(file_okay=False), default=None,
              help="A local seq2seq MT checkpoint (as for `mpm translate --model`): draft the phrases and the "
                   "calibration set with it, every entry marked for review.")
@click.option("--src-code", help="Source language code of a multilingual MT model (NLLB eng_Latn, mBART en_XX).")
@click.option("--tgt-code", help="Target language code of a multilingual MT model (NLLB swh_Latn).")
@click.option("--prefix", default="", help="Text put before each input (T5: 'translate English to German: ').")
@click.option("--max-new-tokens", type=int, default=128, show_default=True, help="Longest MT output per text.")
@click.option("--device", default="cpu", show_default=True, help="Device of the MT model.")
def new(code: str, out: str | None, force: bool, mt_dir: str | None, src_code: str | None,
        tgt_code: str | None, prefix: str, max_new_tokens: int, device: str) -> None:
    """Scaffold a language pack for CODE (any language lingua knows): `mpm lang new sw`.

    \b
    Writes a pip-installable distribution: identity from lingua and ISO data,
    the English phrases and calibration pairs marked untranslated, README and
    tests calling the shared conformance check. Then translate, and run
    `mpm lang check CODE`."""
    from ..langkit.identity import identity_for
    from ..langkit.scaffold import english_texts, write_pack

    ident = identity_for(code)
    texts = english_texts(ident)
    if mt_dir:
        from ..langkit.machine import machine_translate, seq2seq_translator

        translator = seq2seq_translator(mt_dir, src_code=src_code, tgt_code=tgt_code, prefix=prefix,
                                        max_new_tokens=max_new_tokens, device=device)
        texts = machine_translate(texts, ident.code, translator)
    folder = write_pack(ident.code, out, texts=texts, force=force)
    left = sum(v == "untranslated" for v in texts.review.values())
    drafted = sum(v == "machine-translated" for v in texts.review.values())
    click.echo(f"wrote {folder}/ : {ident.distribution} ({ident.name} / {ident.native_name}, {ident.script}, "
               f"lingua {ident.lingua_name})")
    click.echo(f"  {left} entries untranslated" + (f", {drafted} machine-translated (review them)" if drafted else ""))
    click.echo("next:")
    click.echo(f"  translate {folder}/{ident.module}/phrases.py and calibration.py, deleting their REVIEW entries")
    click.echo(f"  pip install -e {folder}")
    click.echo(f"  mpm lang check {ident.code}")


@lang.command("check")
@click.argument("code")
@click.option("--scenes", type=int, default=1000, show_default=True,
              help="Random scenes for the toy-grammar round trip (when the pack has a grammar; 0 skips it).")
@click.option("--allow-untranslated", is_flag=True, help="Report untranslated entries as warnings, not failures.")
def check(code: str, scenes: int, allow_untranslated: bool) -> None:
    """Check an installed pack before publishing; exit status 1 if a check fails.

    \b
    Every phrase translated and identified as the language (lingua), at least
    60 calibration pairs with responses in the language, offline word segmentation,
    and realise -> parse round trips when the pack has a toy grammar."""
    from ..langkit.check import check_installed

    report = check_installed(code, scenes=scenes, require_translated=not allow_untranslated)
    click.echo(report.render())
    if not report.ok:
        raise SystemExit(1)
