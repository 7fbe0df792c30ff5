"""Freeze sets: resolve ``component[.group]`` names to parameters."""

from __future__ import annotations

from torch import nn

from ..contracts.base import Component
from ..errors import ConfigError, did_you_mean


def _group_prefixes(components: dict[str, nn.Module], spec: str) -> tuple[str, list[str]]:
    component, _, group = spec.partition(".")
    if component not in components or components[component] is None:
        raise ConfigError(
            f"unknown trainable set '{spec}'.{did_you_mean(component, components)} "
            f"Components: {', '.join(k for k, v in components.items() if v is not None)}"
        )
    module = components[component]
    if not group:
        return component, [""]
    groups = module.trainable_groups() if isinstance(module, Component) else {}
    if group not in groups:
        raise ConfigError(
            f"component '{component}' has no parameter group '{group}'.{did_you_mean(group, groups)} "
            f"Groups: {', '.join(sorted(groups)) or 'none'}"
        )
    return component, groups[group]


def apply_freeze_sets(
    components: dict[str, nn.Module], trainable: list[str], frozen: list[str]
) -> dict[str, tuple[int, int]]:
    """Freeze everything, unfreeze ``trainable``, then freeze ``frozen``.

    Returns ``{component: (trainable_params, total_params)}``."""
    for module in components.values():
        if module is not None:
            module.requires_grad_(False)
    for flag, specs in ((True, trainable), (False, frozen)):
        for spec in specs:
            component, prefixes = _group_prefixes(components, spec)
            for name, param in components[component].named_parameters():
                if any(name.startswith(p) for p in prefixes):
                    param.requires_grad_(flag)
    counts = {}
    for cname, module in components.items():
        if module is None:
            continue
        params = list(module.parameters())
        counts[cname] = (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
    return counts


def format_counts(counts: dict[str, tuple[int, int]]) -> str:
    lines = [f"{'component':<12}{'trainable':>14}{'total':>14}"]
    for name, (t, n) in counts.items():
        lines.append(f"{name:<12}{t:>14,}{n:>14,}")
    t_all = sum(t for t, _ in counts.values())
    n_all = sum(n for _, n in counts.values())
    lines.append(f"{'all':<12}{t_all:>14,}{n_all:>14,}")
    return "\n".join(lines)
