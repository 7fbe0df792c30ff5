"""``mpm translate``."""

from __future__ import annotations

import click

from ..errors import MPMError
from ..security import trust_remote_code_option


@click.command("translate")
@click.argument("input_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output file (same layout).")
@click.option("--to", "target", required=True, help="Target language code (e.g. zh, de).")
@click.option("--from", "source", default="en", show_default=True, help="Source language code.")
@click.option("--translator", type=click.Choice(["seq2seq", "llm"]), default="seq2seq", show_default=True,
              help="seq2seq: a local MT checkpoint (--model); llm: the pivot LLM (--llm NAME or --run DIR).")
@click.option("--model", "model_path", type=click.Path(file_okay=False), help="MT checkpoint folder (seq2seq).")
@click.option("--src-code", help="Source language code of a multilingual MT model (mBART en_XX, NLLB eng_Latn).")
@click.option("--tgt-code", help="Target language code of a multilingual MT model (mBART zh_CN, NLLB zho_Hans).")
@click.option("--prefix", default="", help="Text put before each input (T5: 'translate English to German: ').")
@click.option("--llm", "llm_name", help="Pivot LLM by name (llm translator); model.llm.* overrides as key=value.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), help="A training run whose LLM translates.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--num-beams", type=int, default=1, show_default=True)
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--limit", type=int, help="Translate only the first N records.")
@click.option("--device", default="cpu", show_default=True)
@click.argument("overrides", nargs=-1)
@trust_remote_code_option
def translate(input_file, output, target, source, translator, model_path, src_code, tgt_code, prefix, llm_name,
              run_dir, batch_size, num_beams, max_new_tokens, limit, device, overrides) -> None:
    """Translate an English instruction (LLaVA) or caption file into a target language.

    \b
    Conversations keep their turns, '<image>' markers stay in place, and each
    record's 'lang' becomes the target. JSON arrays stay arrays, JSON lines stay lines.

    \b
    Examples:
      mpm translate llava_instruct.json -o llava_instruct.zh.json --to zh --model ./opus-mt-en-zh
      mpm translate pairs.jsonl -o pairs.de.jsonl --to de --translator llm --llm llama model.llm.path=./llama
    """
    from ..training.translate import PivotLLMTranslator, Seq2SeqTranslator, translate_file

    if translator == "seq2seq":
        if not model_path:
            raise MPMError("--translator seq2seq needs --model PATH (a local MT checkpoint folder)")
        engine = Seq2SeqTranslator(model_path, src_code=src_code, tgt_code=tgt_code, prefix=prefix,
                                   num_beams=num_beams, max_new_tokens=max_new_tokens, device=device)
    else:
        from ..inference.generation import GenerationConfig

        llm = _pivot_llm(llm_name, run_dir, list(overrides), target).to(device)
        engine = PivotLLMTranslator(llm, _language_name(target), _language_name(source),
                                    GenerationConfig(max_new_tokens=max_new_tokens, num_beams=num_beams))
    report = translate_file(input_file, output, engine, target, batch_size=batch_size, limit=limit)
    click.echo(f"translated {report['records']} records -> {report['output']}")
    if report["skipped"]:
        click.echo(f"skipped {report['skipped']} unreadable records, e.g. {'; '.join(report['problems'])}")


def _pivot_llm(name: str | None, run_dir: str | None, overrides: list[str], target: str):
    if run_dir:
        from ..composition import load_stack

        return load_stack(run_dir).llm
    if not name:
        raise MPMError("--translator llm needs --llm NAME or --run RUN_FOLDER")
    from ..config.loading import resolve_config
    from ..inference.loading import pivot_llm_from_config

    return pivot_llm_from_config(resolve_config(llm=name, overrides=overrides))


def _language_name(code: str) -> str:
    try:
        from ..composition import load_language

        return load_language(code).name
    except MPMError:
        return code
