"""``mpm demo``: the MPM experiment on the toy world, end to end.

Per seed, in ``<out>/seed<k>/``:

1. a byte-level BPE tokenizer trained on text of every language and random
   initial weights, shared by both pivots (tokenisation and initialisation
   never explain a difference between them);
2. two pivots, tiny Llamas trained from scratch through the ``llama`` plugin
   and the trainer's ``pretrain`` stage: ``mpm`` on the multilingual corpus
   *with* English<->L parallel text, ``no-pivot`` on the same number of
   documents *without* it (``corpus.py``); each is saved as a Hugging Face
   checkpoint and loaded back by path;
3. ``align`` (vision encoder + connector train, LLM frozen) on English
   captions -- once per pivot -- and on captions in every language for the
   ``native`` upper bound;
4. ``instruct`` (connector + LLM train) on English instructions with a
   calibration share of target-language instructions (0 or the profile's
   share), or on instructions in every language for ``native``;
5. evaluation on held-out scenes in English and every target language.

Conditions (every one with the same profile settings):

=========  ========  ====================  ==================================
condition  pivot     align captions        instruct data
=========  ========  ====================  ==================================
mpm        mpm       English               English + calibration share
mpm-cal0   mpm       English (shared)      English only
no-pivot   no-pivot  English               English + calibration share
native     mpm       every language        every language (equal shares)
=========  ========  ====================  ==================================
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mpm_framework.errors import MPMError

from .conditions import CONDITIONS, PIVOTS, Condition
from .corpus import CorpusConfig, Document, build_corpus, tokenizer_texts
from .datasets import CAPTION_TASK, VQA_TASK, EvalItem, align_records, eval_items, instruct_records
from .packs import load_packs
from .profiles import Profile
from .scoring import score_responses


@dataclass
class DemoSettings:
    profile: Profile
    langs: list[str]  # target languages (English is always evaluated too)
    out: Path
    conditions: list[str] = field(default_factory=lambda: list(CONDITIONS))
    progress: bool = True
    command: str = ""
    workers: int = 1  # worker processes (jobs of a seed run in parallel where they can)
    paint: bool = False  # also run the toy paint experiment with the pretrained MPM pivot
    resume: bool = False  # keep the jobs an earlier run of the same settings finished
    threads: int | None = None  # torch threads per worker process
    verbose: bool = False  # jobs' output and per-step bars on the terminal instead of per-job logs

    def replace_progress(self, progress: bool) -> DemoSettings:
        import dataclasses

        return dataclasses.replace(self, progress=progress)


def _log(message: str, bar: Any = None) -> None:
    line = f"[demo {time.strftime('%H:%M:%S')}] {message}"
    if bar is not None and not getattr(bar, "disable", True):
        bar.write(line)
    else:
        print(line, flush=True)


# -- configs -------------------------------------------------------------------------


def llm_overrides(path: Path) -> list[str]:
    return [f"model.llm.path={path}"]


def vision_overrides(profile: Profile, seed: int) -> list[str]:
    return [
        f"model.vision.tiny.image_size={profile.image_size}",
        f"model.vision.tiny.patch_size={profile.patch_size}",
        f"model.vision.tiny.hidden_size={profile.vision_hidden}",
        f"model.vision.tiny.intermediate_size={2 * profile.vision_hidden}",
        f"model.vision.tiny.num_layers={profile.vision_layers}",
        f"model.vision.tiny.num_heads={profile.vision_heads}",
        f"model.vision.tiny.seed={seed}",
        "model.vision.feature_layer=-1",
    ]


def run_overrides(stage: str, output_dir: Path, steps: int, batch: int, lr: float, seed: int,
                  progress: bool) -> list[str]:
    return [
        f"run.stage={stage}", f"run.output_dir={output_dir}", f"run.max_steps={steps}",
        f"run.batch_size={batch}", f"run.lr={lr}", f"run.seed={seed}",
        f"run.warmup_steps={max(1, steps // 20)}", "run.schedule=cosine", "run.min_lr_ratio=0.05",
        "run.weight_decay=0.01", f"run.save_every={steps}", "run.keep_last=1", "run.overwrite=true",
        f"run.log_every={max(1, steps // 5)}", f"run.progress={str(progress).lower()}",
        "run.device=cpu", "data.max_length=256", "data.max_bad_fraction=0.0",
    ]


def init_position_embeddings(vision: Any, std: float, seed: int) -> int:
    """Redraw the learned position embeddings of a from-scratch vision tower.

    transformers draws them with std 0.02 while the patch embeddings come out
    near 0.5 at this size, so at first the tower barely knows where a patch is
    -- and where a shape is, is half of what the toy world asks. A larger draw
    lets alignment learn positions in far fewer steps. Returns how many
    tables were redrawn (0 for towers without such a table)."""
    import torch

    if std <= 0:
        return 0
    generator = torch.Generator().manual_seed(seed)
    count = 0
    for name, module in vision.named_modules():
        if name.endswith("position_embedding") and isinstance(module, torch.nn.Embedding):
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
            count += 1
    return count


def document_record(doc: Document) -> dict[str, Any]:
    """A corpus document in the trainer's formats (plain text or a text-only
    conversation: labels on the answer only)."""
    if doc.text is not None:
        return {"text": doc.text, "lang": doc.lang}
    assert doc.turns is not None
    roles = {"user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": roles[r], "value": v} for r, v in doc.turns], "lang": doc.lang}


# -- the experiment ----------------------------------------------------------------------


class Demo:
    def __init__(self, settings: DemoSettings) -> None:
        self.s = settings
        self.profile = settings.profile
        unknown = [c for c in settings.conditions if c not in CONDITIONS]
        if unknown:
            from mpm_framework.errors import did_you_mean

            raise MPMError(f"unknown condition '{unknown[0]}'.{did_you_mean(unknown[0], CONDITIONS)} "
                           f"Conditions: {', '.join(CONDITIONS)}")
        self.packs = load_packs(settings.langs)
        self.langs = [c for c in self.packs if c != "en"]
        if not self.langs:
            raise MPMError("the demo needs at least one target language: install a pack (mpm lang install de)")
        self.timings: dict[str, float] = {}

    # -- helpers -------------------------------------------------------------------
    def _note(self, message: str, bar: Any = None) -> None:
        """A line of the run's log (``<out>/demo.log``); on the terminal with --verbose."""
        line = f"[demo {time.strftime('%H:%M:%S')}] {message}"
        self.s.out.mkdir(parents=True, exist_ok=True)
        with open(self.s.out / "demo.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.s.verbose:
            _log(message, bar)

    def _quietly(self, log: Path):
        """Output of the block into ``log`` unless --verbose."""
        import contextlib

        from .console import redirected

        return contextlib.nullcontext() if self.s.verbose else redirected(log)

    def _timed(self, key: str, fn: Callable[[], Any]) -> Any:
        start = time.time()
        try:
            return fn()
        finally:
            self.timings[key] = round(self.timings.get(key, 0.0) + time.time() - start, 2)

    def _resolve(self, overrides: list[str], vision: bool):
        from mpm_framework.config.loading import resolve_config

        return resolve_config(
            llm="llama", vision="clip" if vision else None,
            connector=self.profile.connector if vision else None,
            lang=list(self.packs), overrides=overrides,
        )

    def corpus_weights(self) -> dict[str, float] | None:
        """Per-language weights of the pivot corpus (``low_resource_*`` settings)."""
        p = self.profile
        if not p.low_resource_lang or p.low_resource_share == 1.0:
            return None
        if p.low_resource_lang not in self.langs:
            raise MPMError(f"low_resource_lang={p.low_resource_lang} is not a target language of this run "
                           f"({', '.join(self.langs)})")
        if p.low_resource_share <= 0:
            raise MPMError(f"low_resource_share must be > 0, got {p.low_resource_share}")
        return {p.low_resource_lang: p.low_resource_share}

    def align_shares(self) -> dict[str, float]:
        """Languages of the English-data alignments' captions: English, less
        ``align_target_share`` split evenly over the target languages."""
        share = self.profile.align_target_share
        if not 0 <= share <= 1:
            raise MPMError(f"align_target_share must be in [0, 1], got {share}")
        if share == 0:
            return {"en": 1.0}
        return {"en": 1.0 - share, **{c: share / len(self.langs) for c in self.langs}}

    # -- stages --------------------------------------------------------------------
    def init_pivot(self, seed_dir: Path, seed: int) -> Path:
        """The tokenizer (byte-level BPE on text of every language, every character of a
        script written without spaces its own pre-token: ``mpm_llm_llama.toy``)
        and the random initial weights both pivots start from, saved together as
        a Hugging Face checkpoint with the llama plugin's toy helper.

        The weights are drawn with ``llm_init_std``: transformers' default of
        0.02 suits widths near 1000; at width 64-96 it leaves the embeddings of
        words that play the same part in the corpus (the four colours, left and
        right) almost identical, and the pivot then takes thousands of steps to
        tell them apart, hence to copy them from a description."""
        from mpm_llm_llama.toy import build_tiny_llama, train_tokenizer

        p = self.profile
        path = seed_dir / "pivot-init"
        train_tokenizer(tokenizer_texts(self.packs, seed), vocab_size=p.vocab_size, path=path, split_unspaced=True)
        build_tiny_llama(path, seed=seed, hidden_size=p.llm_hidden, intermediate_size=p.llm_intermediate,
                         num_layers=p.llm_layers, num_heads=p.llm_heads, max_position_embeddings=256,
                         tie_word_embeddings=True, initializer_range=p.llm_init_std)
        from .tokens import token_stats

        _write_json(path / "token_stats.json", token_stats(self.packs, path / "tokenizer.json", seed))
        return path

    def pretrain(self, seed_dir: Path, seed: int, pivot: str, init_dir: Path) -> Path:
        from mpm_framework.composition import build_component
        from mpm_framework.training import TextStack, train_stage
        from mpm_framework.training.recipes import stage_config

        p = self.profile
        folder = seed_dir / "pivots" / pivot
        corpus = build_corpus(self.packs, seed, parallel=(pivot == "mpm"),
                              config=CorpusConfig(num_documents=p.corpus_documents,
                                                   cross_share=p.corpus_cross_share,
                                                   lang_weights=self.corpus_weights()))
        stats = corpus_stats(corpus)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "corpus_stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        (folder / "corpus_sample.txt").write_text(
            "\n\n".join(f"[{d.kind} {'+'.join(d.langs)}]\n{d.as_text()}" for d in corpus[:40]), encoding="utf-8")
        overrides = llm_overrides(init_dir) + run_overrides(
            "pretrain", folder, p.pretrain_steps, p.pretrain_batch, p.pretrain_lr, seed, self.s.progress)
        cfg = stage_config(self._resolve(overrides, vision=False), "pretrain")
        llm = build_component("llm", cfg.model.llm.name, [f"path={init_dir}"], seed=seed)
        stack = TextStack(llm, languages=self.packs, config=cfg)
        result = train_stage(stack, cfg, train_samples=[document_record(d) for d in corpus],
                             progress=self.s.progress)
        model_dir = folder / "model"
        llm.save_pretrained(model_dir)  # a Hugging Face checkpoint, loaded back by path below
        _write_json(folder / "summary.json", {"pivot": pivot, "final_loss": result.final_loss,
                                              "steps": result.steps, "corpus": stats})
        return model_dir

    def compose_stack(self, pivot_dir: Path, seed: int, run: list[str]):
        from mpm_framework.composition import build_stack

        overrides = llm_overrides(pivot_dir) + vision_overrides(self.profile, seed) + run
        cfg = self._resolve(overrides, vision=True)
        return build_stack(cfg), cfg

    def align(self, seed_dir: Path, seed: int, pivot_dir: Path, name: str, native: bool) -> tuple[Path, Any]:
        from mpm_framework.training import train_stage
        from mpm_framework.training.recipes import stage_config

        p = self.profile
        folder = seed_dir / "align" / name
        run = run_overrides("align", folder, p.align_steps, p.align_batch, p.align_lr, seed, self.s.progress)
        run.append("run.trainable=[vision,connector]")
        stack, cfg = self.compose_stack(pivot_dir, seed, run)
        cfg = stage_config(cfg, "align")
        init_position_embeddings(stack.vision, p.vision_position_init_std, seed)
        shares = {c: 1.0 for c in self.packs} if native else self.align_shares()
        data = align_records(self.packs, shares, p.align_samples, seed, p.image_size)
        train_stage(stack, cfg, train_samples=data, progress=self.s.progress)
        return folder / "align", stack

    def instruct(self, seed_dir: Path, seed: int, pivot_dir: Path, align_dir: Path, cond: Condition):
        from mpm_framework.training import train_stage
        from mpm_framework.training.recipes import stage_config

        p = self.profile
        folder = seed_dir / "conditions" / cond.name
        run = run_overrides("instruct", folder, p.instruct_steps, p.instruct_batch, p.instruct_lr, seed,
                            self.s.progress)
        run.append(f"run.init_from={align_dir}")
        stack, cfg = self.compose_stack(pivot_dir, seed, run)
        cfg = stage_config(cfg, "instruct")
        if cond.instruct == "native":
            data = instruct_records(self.packs, p.instruct_samples, seed, caption_share=p.instruct_caption_share,
                                    image_size=p.image_size, langs={c: 1.0 for c in self.packs})
        else:
            share = p.calibration_share if cond.instruct == "calibrated" else 0.0
            data = instruct_records(self.packs, p.instruct_samples, seed, calibration_share=share,
                                    targets=self.langs, caption_share=p.instruct_caption_share,
                                    translation_noise=p.translation_noise,
                                    image_size=p.image_size)
        train_stage(stack, cfg, train_samples=data, progress=self.s.progress)
        return folder, stack

    # -- evaluation -------------------------------------------------------------------
    def generate(self, stack, items: list[EvalItem] | list[Any], with_images: bool = True) -> list[str]:
        """Greedy responses, captions and answers batched separately (their
        lengths differ by an order of magnitude)."""
        p = self.profile
        responses = [""] * len(items)
        for task, limit in ((CAPTION_TASK, p.max_new_tokens), (VQA_TASK, 16)):
            index = [i for i, it in enumerate(items) if it.task == task]
            if not index:
                continue
            images = [items[i].image for i in index] if with_images else None
            out = stack.generate(images, [items[i].prompt for i in index], batch_size=p.eval_batch,
                                 max_new_tokens=limit)
            for i, text in zip(index, out):
                responses[i] = text
        return responses

    def evaluate(self, stack, items: list[EvalItem], folder: Path) -> dict[str, dict[str, float]]:
        responses = self.generate(stack, items)
        metrics, rows = score_responses(items, responses, self.packs)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "predictions.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        _write_json(folder / "metrics.json", metrics)
        return metrics

    def probe_pivot(self, stack, seed: int) -> dict[str, dict[str, float]]:
        """Text-only: describe / answer about a scene whose description is given
        in English, instructions and answers in L (the cross-lingual ability
        the image features will have to ride on), and in L itself."""
        from .probe import probe_items, score_probe

        items = probe_items(self.packs, self.langs, self.profile.probe_scenes, seed)
        responses = self.generate(stack, items, with_images=False)
        return score_probe(items, responses, self.packs)

    # -- jobs -----------------------------------------------------------------------------
    def token_stats(self) -> dict[str, dict[str, float]]:
        """The tokenizer's cut of each language (``tokens.py``), averaged over seeds."""
        per_seed = [json.loads(f.read_text(encoding="utf-8")) for seed in self.profile.seeds
                    if (f := self.seed_dir(seed) / "pivot-init" / "token_stats.json").is_file()]
        if not per_seed:
            return {}
        return {lang: {k: round(sum(s[lang][k] for s in per_seed) / len(per_seed), 3) for k in per_seed[0][lang]}
                for lang in per_seed[0]}

    def scene_scores(self) -> dict[str, list[dict[str, dict[str, list[float]]]]]:
        """Per-scene scores of every condition, one entry per seed (from the
        predictions each evaluation wrote): what the confidence intervals resample."""
        from .stats import read_scene_scores

        return {c: [read_scene_scores(self.seed_dir(seed) / "conditions" / c / "eval" / "predictions.jsonl")
                    for seed in self.profile.seeds] for c in self.s.conditions}

    def seed_dir(self, seed: int) -> Path:
        return self.s.out / f"seed{seed}"

    def plan(self) -> list[Job]:
        """Every job of every seed with its dependencies: a pretraining per
        pivot, an alignment per (pivot, align data), an instruct + evaluation
        per condition."""
        wanted = [CONDITIONS[c] for c in self.s.conditions]
        jobs: list[Job] = []
        for seed in self.profile.seeds:
            pivots = sorted({c.pivot for c in wanted}, key=PIVOTS.index)
            for pivot in pivots:
                jobs.append(Job("pretrain", seed, pivot))
            probed: set[str] = set()
            for key in dict.fromkeys((c.pivot, c.align) for c in wanted):
                pivot, align = key
                jobs.append(Job("align", seed, f"{pivot}-{align}", deps=(f"pretrain/{seed}/{pivot}",),
                                probe=pivot not in probed, pivot=pivot, align=align))
                probed.add(pivot)
            for c in wanted:
                jobs.append(Job("instruct", seed, c.name, deps=(f"align/{seed}/{c.pivot}-{c.align}",)))
        return jobs

    def run_job(self, job: Job) -> dict[str, Any]:
        """Run one job (in this process; its output into the job's log file
        unless --verbose); returns what the report needs."""
        with self._quietly(self.job_log(job)):
            return self._run_job(job)

    def job_log(self, job: Job) -> Path:
        return self.seed_dir(job.seed) / "logs" / f"{job.kind}-{job.name}.log"

    def _run_job(self, job: Job) -> dict[str, Any]:
        p, out = self.profile, self.seed_dir(job.seed)
        started = time.time()
        result: dict[str, Any] = {}
        if job.kind == "pretrain":
            self.pretrain(out, job.seed, job.name, out / "pivot-init")
        elif job.kind == "align":
            _, stack = self.align(out, job.seed, out / "pivots" / job.pivot / "model", job.name,
                                  job.align == "native")
            if job.probe and p.probe_scenes > 0:
                result["probe"] = {job.pivot: self.probe_pivot(stack, job.seed)}
        elif job.kind == "instruct":
            cond = CONDITIONS[job.name]
            align_dir = out / "align" / f"{cond.pivot}-{cond.align}" / "align"
            folder, stack = self.instruct(out, job.seed, out / "pivots" / cond.pivot / "model", align_dir, cond)
            eval_started = time.time()
            items = eval_items(self.packs, list(self.packs), p.eval_scenes, job.seed, p.questions_per_scene,
                               p.image_size)
            result["metrics"] = self.evaluate(stack, items, folder / "eval")
            result["eval_s"] = round(time.time() - eval_started, 2)
        else:  # pragma: no cover - plan() makes only the kinds above
            raise MPMError(f"unknown job kind {job.kind}")
        result["elapsed_s"] = round(time.time() - started, 2)
        result["torch_threads"] = _torch_threads()  # what this job's process really ran with
        _write_json(self.job_file(job), result)  # marks the job done (--resume)
        return result

    def job_file(self, job: Job) -> Path:
        return self.seed_dir(job.seed) / "jobs" / f"{job.kind}-{job.name}.json"

    def _execute(self, jobs: list[Job]) -> dict[str, dict[str, Any]]:
        """Run the jobs in dependency order: in this process (``workers`` 1), or
        in a pool of worker processes, each with its own torch threads -- tiny
        models use two CPU cores far better as two processes than as two
        threads of one."""
        from tqdm.auto import tqdm

        results: dict[str, dict[str, Any]] = {}
        pending = {job.id: job for job in jobs}
        if self.s.resume:
            for job in jobs:
                file = self.job_file(job)
                if file.is_file() and all(d in results for d in job.deps):
                    results[job.id] = json.loads(file.read_text(encoding="utf-8"))
                    self.timings[job.timing_key] = results[job.id].get("elapsed_s", 0.0)
                    del pending[job.id]
            if results:
                _log(f"resume: {len(results)} of {len(jobs)} jobs already done in {self.s.out}")
        # the one progress display of the run: jobs of the graph (step bars live in the job logs)
        bar = tqdm(total=len(jobs), initial=len(results), desc=f"demo {self.s.out.name}", unit="job",
                   dynamic_ncols=True, disable=not self.s.progress, position=0)

        def finished(job: Job, result: dict[str, Any]) -> None:
            results[job.id] = result
            self.timings[job.timing_key] = result["elapsed_s"]
            bar.update(1)
            self._note(f"done {job.describe(self.profile)} in {result['elapsed_s']:.0f} s", bar)

        def ready() -> list[Job]:
            return sorted((j for j in pending.values() if all(d in results for d in j.deps)), key=Job.priority)

        try:
            if self.s.workers <= 1:
                while pending:
                    job = ready()[0]
                    del pending[job.id]
                    self._note(f"start {job.describe(self.profile)}", bar)
                    finished(job, self.run_job(job))
                return results
            import concurrent.futures as cf
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(self.s.workers, mp_context=context, initializer=_init_worker,
                                        initargs=(self.s, self.s.threads or 1)) as pool:
                # workers start with their own torch pools: no thread oversubscription
                running: dict[cf.Future, Job] = {}
                while pending or running:
                    for job in ready():
                        if len(running) >= self.s.workers:
                            break
                        del pending[job.id]
                        self._note(f"start {job.describe(self.profile)}", bar)
                        running[pool.submit(_run_in_worker, job)] = job
                    done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                    for future in done:
                        finished(running.pop(future), future.result())
            return results
        finally:
            bar.close()

    def _check_resume(self, settings: dict[str, Any]) -> None:
        """``--resume`` continues only a run of the same profile and languages;
        a fresh run forgets the jobs an earlier run left in the folder."""
        import shutil

        previous = self.s.out / "settings.json"
        if self.s.resume:
            if previous.is_file():
                old = json.loads(previous.read_text(encoding="utf-8"))
                for key in ("profile", "langs"):
                    mine, theirs = json.loads(json.dumps(settings[key])), old.get(key)
                    if isinstance(mine, dict) and isinstance(theirs, dict):  # settings added later: ignored
                        mine = {k: v for k, v in mine.items() if k in theirs}
                        theirs = {k: v for k, v in theirs.items() if k in mine}
                    if mine != theirs:
                        raise MPMError(f"--resume: {self.s.out} holds a run with other {key} settings; "
                                       "continue it with the same options or choose another --out")
            return
        for seed_dir in self.s.out.glob("seed*"):
            shutil.rmtree(seed_dir / "jobs", ignore_errors=True)

    def run(self) -> dict[str, Any]:
        from .report import aggregate, write_report

        started = time.time()
        self.s.out.mkdir(parents=True, exist_ok=True)
        settings = {"profile": asdict(self.profile), "langs": self.langs, "conditions": self.s.conditions,
                    "workers": self.s.workers, "threads": self.s.threads, "command": self.s.command}
        self._check_resume(settings)
        _write_json(self.s.out / "settings.json", settings)
        _log(f"profile '{self.profile.name}', languages en + {', '.join(self.langs)}, seeds "
             f"{self.profile.seeds}, conditions {', '.join(self.s.conditions)}, {self.s.workers} worker "
             f"process(es) x {self.s.threads or _torch_threads()} thread(s); writing to {self.s.out}"
             + ("" if self.s.verbose else " (job output in its logs/ folders; --verbose shows it)"))
        for seed in self.profile.seeds:
            self.seed_dir(seed).mkdir(parents=True, exist_ok=True)
            if self.s.resume and (self.seed_dir(seed) / "pivot-init" / "config.json").is_file():
                continue
            with self._quietly(self.seed_dir(seed) / "logs" / "pivot-init.log"):
                self._timed("pivot-init", lambda sd=seed: self.init_pivot(self.seed_dir(sd), sd))
        if self.profile.export_records > 0:
            from .export import export_data

            seed = self.profile.seeds[0]
            with self._quietly(self.s.out / "logs" / "export.log"):
                self._timed("export", lambda: export_data(
                    self.packs, self.langs, self.s.out / "data", self.profile.export_records, seed,
                    self.profile.calibration_share, self.profile.image_size))
        jobs = self.plan()
        results = self._execute(jobs)
        per_seed = []
        for seed in self.profile.seeds:
            mine = {j.id: results[j.id] for j in jobs if j.seed == seed}
            seed_result = {
                "seed": seed,
                "conditions": {j.name: mine[j.id]["metrics"] for j in jobs if j.seed == seed and j.kind == "instruct"},
                "probe": {k: v for j in jobs if j.seed == seed and j.kind == "align"
                          for k, v in mine[j.id].get("probe", {}).items()},
            }
            _write_json(self.seed_dir(seed) / "results.json", seed_result)
            per_seed.append(seed_result)
        summary = aggregate(per_seed, list(self.packs), self.s.conditions)
        from .report import headline, intervals

        scenes = self.scene_scores()
        summary["ci"] = intervals(scenes, list(self.packs))
        summary["headline"] = headline(scenes, list(self.packs))
        summary["tokens"] = self.token_stats()
        from .console import available_cores

        summary.update(
            profile=self.profile.name, settings=settings, command=self.s.command,
            timings_s=self.timings, total_s=round(time.time() - started, 1),
            environment={"python": platform.python_version(), "cpus": os.cpu_count(),
                         "cores_available": available_cores(), "workers": self.s.workers,
                         "threads_per_worker": self.s.threads or _torch_threads(),
                         "torch_threads": _torch_threads()},
            conditions_described={c: CONDITIONS[c].description for c in self.s.conditions},
        )
        paths = write_report(summary, self.s.out, echo=self.s.verbose)
        from .integrity import check_run

        problems = check_run(self.s.out)
        if problems:
            raise MPMError("the demo run is incomplete:\n  " + "\n  ".join(problems))
        if not self.s.verbose:  # the run ends with its headline and where the rest is
            from .report import headline_markdown, main_table

            print(headline_markdown(summary["headline"], self.profile.eval_scenes, len(self.profile.seeds))
                  or main_table(summary), flush=True)
        print(f"report: {paths['markdown']} (all tables; {paths['chart'].name}, {paths['json'].name} beside it; "
              f"{summary['total_s']:.0f} s)", flush=True)
        if self.s.paint:
            summary["paint"] = self.run_paint()
        return summary

    def run_paint(self) -> dict[str, Any]:
        """VisCPM-Paint's claim on the same toy world (``paint_experiment.py``),
        with the MPM pivot this run pretrained (first seed), kept frozen."""
        from mpm_framework.composition import build_component

        from .paint_experiment import run_paint_experiment

        seed = self.profile.seeds[0]
        pivot_dir = self.seed_dir(seed) / "pivots" / "mpm" / "model"
        # absolute: the paint run folders record it and reload from any directory
        cfg = self._resolve(llm_overrides(pivot_dir.resolve()), vision=False)
        llm = build_component("llm", cfg.model.llm.name, [f"path={pivot_dir.resolve()}"], seed=seed)
        out = self.s.out / "paint"
        _log(f"paint: decoders trained on English (and, native, every language) captions through the "
             f"frozen '{pivot_dir.parent.name}' pivot; results in {out}")
        result = run_paint_experiment(llm, self.langs, self.profile.name, seed=seed, out_dir=out,
                                      packs=self.packs, progress=self.s.progress, log=_log,
                                      llm_config=cfg.model.llm)
        print(result.table(), flush=True)
        return result.to_json()


@dataclass(frozen=True)
class Job:
    kind: str  # pretrain | align | instruct
    seed: int
    name: str  # pivot, "<pivot>-<align>", or condition
    deps: tuple[str, ...] = ()
    probe: bool = False  # align jobs: also run the text-only probe of the pivot
    pivot: str = ""
    align: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.seed}/{self.name}"

    @property
    def timing_key(self) -> str:
        return f"seed{self.seed}/{self.kind}/{self.name}"

    def priority(self) -> tuple[int, int, int]:
        # Pretraining first, then the alignments that unlock the most instruct jobs.
        order = {"pretrain": 0, "align": 1, "instruct": 2}[self.kind]
        return (self.seed, order, 0 if self.name.endswith("mpm-en") or self.name == "mpm" else 1)

    def describe(self, p: Profile) -> str:
        if self.kind == "pretrain":
            data = "with" if self.name == "mpm" else "without"
            return (f"seed {self.seed}: pretrain pivot '{self.name}' ({p.pretrain_steps} steps, {data} "
                    "parallel text)")
        if self.kind == "align":
            data = "captions in every language" if self.name.endswith("native") else "English captions"
            return f"seed {self.seed}: align '{self.name}' ({p.align_steps} steps, {data}, LLM frozen)"
        return f"seed {self.seed}: instruct '{self.name}' ({p.instruct_steps} steps) + evaluation"


_WORKER: Demo | None = None
_WORKER_LOG: Any = None


def _init_worker(settings: DemoSettings, threads: int) -> None:
    from .console import limit_threads, redirected

    global _WORKER, _WORKER_LOG
    if not settings.verbose:  # import-time chatter (DeepSpeed's accelerator note...) into a log
        # held for the worker's life: a collected context manager would restore the terminal
        _WORKER_LOG = redirected(settings.out / "logs" / f"worker-{os.getpid()}.log")
        _WORKER_LOG.__enter__()
    limit_threads(threads)
    _WORKER = Demo(settings.replace_progress(settings.verbose and settings.progress))


def _run_in_worker(job: Job) -> dict[str, Any]:
    assert _WORKER is not None
    return _WORKER.run_job(job)


def corpus_stats(corpus: list[Document]) -> dict[str, Any]:
    from collections import Counter

    kinds = Counter(d.kind for d in corpus)
    langs = Counter(d.lang for d in corpus)
    return {"documents": len(corpus), "parallel": sum(d.parallel for d in corpus),
            "by_kind": dict(sorted(kinds.items())), "by_language": dict(sorted(langs.items()))}


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _write_json(path: Path, data: Mapping[str, Any] | list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return None
    return str(value)
