"""``python -m mpm_framework.training --config recipe.yaml [--stage S] [--resume] [key=value ...]``

The entry point of worker processes (``torchrun ... -m mpm_framework.training``)
and a launcher-friendly twin of ``mpm compose --config recipe.yaml train``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpm_framework.training", description=__doc__)
    parser.add_argument("--config", required=True, help="recipe or resolved config YAML")
    parser.add_argument("--stage", help="stage, comma-separated chain, or 'all' (default: run.stage)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--nproc", type=int, help="processes to launch through torchrun")
    parser.add_argument("--engine", choices=("single", "ddp", "deepspeed"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run Python code shipped with model checkpoints (their auto_map); only if trusted")
    # The `deepspeed` launcher passes --local_rank; the engines read LOCAL_RANK from the environment.
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_args(argv)

    from ..errors import MPMError

    try:
        from ..config.loading import resolve_config
        from ..security import trusting_remote_code
        from .launch import train_from_config

        overrides = list(args.overrides)
        if args.engine:
            overrides.append(f"run.engine={args.engine}")
        cfg = resolve_config(recipe=args.config, overrides=overrides)
        from .preflight import preflight, stage_list

        preflight(cfg, stage_list(cfg, args.stage), resume=args.resume or bool(cfg.run.resume))
        with trusting_remote_code(args.trust_remote_code):
            train_from_config(cfg, args.stage, resume=args.resume, nproc=args.nproc,
                              progress=not args.no_progress)
    except MPMError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
