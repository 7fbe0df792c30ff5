"""Stage configs and stage chains.

A recipe may hold per-stage overrides::

    run: {output_dir: runs/zh, batch_size: 8}
    stages:
      align:    {run: {max_steps: 2000, lr: 1e-3}, data: {train: [{path: pairs.jsonl}]}}
      instruct: {run: {max_steps: 500, lr: 2e-5}, data: {train: [...], calibration_share: 0.1}}

``stage_config(cfg, "align")`` is the config the align stage trains with; a
chain (``train --stage all`` or ``--stage align,instruct``) runs the stages in
order, each starting from the weights the previous one finished with.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError, nearest
from .config import DataConfig, RunConfig
from .stages import CHAIN_ORDER

STAGE_SECTIONS = ("run", "data")


def _typed(section: Any, schema: type, path: str) -> DictConfig:
    base = OmegaConf.structured(schema)
    if section is None:
        return base
    try:
        return OmegaConf.merge(base, section)
    except OmegaConfBaseException as exc:
        raise ConfigError(_explain(exc, base, path)) from None


def _explain(exc: OmegaConfBaseException, schema: DictConfig, path: str) -> str:
    key = getattr(exc, "key", None)
    full = getattr(exc, "full_key", None) or key
    if key is not None and str(key) not in schema:
        hit = nearest(str(key), [str(k) for k in schema.keys()])
        hint = f" Did you mean '{path}.{hit}'?" if hit else ""
        return f"unknown config key '{path}.{full}'.{hint}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"invalid config value at {path}.{full}: {first}"


def stage_config(cfg: Any, stage: str | None = None) -> DictConfig:
    """``cfg`` with ``stages.<stage>`` merged over its run/data sections and
    ``run.stage`` set; run/data are validated against their schemas."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False)) if not isinstance(cfg, DictConfig) \
        else cfg.copy()
    name = stage or str(OmegaConf.select(cfg, "run.stage", default="align"))
    with _open(cfg):
        cfg.run = _typed(cfg.get("run"), RunConfig, "run")
        cfg.data = _typed(cfg.get("data"), DataConfig, "data")
        overrides = (cfg.get("stages") or {}).get(name)
        if overrides:
            unknown = [k for k in overrides if k not in STAGE_SECTIONS]
            if unknown:
                raise ConfigError(f"stages.{name}.{unknown[0]}: a stage may override only "
                                  f"{' and '.join(STAGE_SECTIONS)}")
            for section in STAGE_SECTIONS:
                if overrides.get(section) is not None:
                    try:
                        cfg[section] = OmegaConf.merge(cfg[section], overrides[section])
                    except OmegaConfBaseException as exc:
                        raise ConfigError(_explain(exc, cfg[section], f"stages.{name}.{section}")) from None
        cfg.run.stage = name
    return cfg


class _open:
    """Allow adding sections to a struct-flagged config for the duration."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        self.flag = OmegaConf.is_struct(self.cfg)
        OmegaConf.set_struct(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc: Any) -> None:
        OmegaConf.set_struct(self.cfg, self.flag)


def chain_stages(cfg: Any, spec: str) -> list[str]:
    """Stage names of ``--stage`` (``align``, ``align,instruct`` or ``all``)."""
    if spec == "all":
        names = list((cfg.get("stages") or {}).keys())
        if not names:
            raise ConfigError("--stage all needs a 'stages:' section in the recipe listing the stages to chain")
        return names
    return [s.strip() for s in spec.split(",") if s.strip()]


def previous_stage(cfg: Any, stage: str) -> str | None:
    """The stage whose weights ``stage`` starts from in a chain: the one listed
    before it in ``stages:``, else the built-in order pretrain -> align -> instruct."""
    listed = list((cfg.get("stages") or {}).keys())
    order = listed if stage in listed else list(CHAIN_ORDER)
    if stage not in order:
        return None
    i = order.index(stage)
    return order[i - 1] if i > 0 else None
