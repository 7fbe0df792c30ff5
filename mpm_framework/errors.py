"""User-facing errors: the CLI prints these without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MPMError(Exception):
    """A mistake the user can fix (bad name, bad config, bad data)."""


class UnknownComponentError(MPMError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConfigError(MPMError, ValueError):
    """A config key, value or combination is wrong (also a ``ValueError``, so
    callers' ``except ValueError`` keep working)."""


class DuplicateComponentError(MPMError):
    pass


class DataError(MPMError, ValueError):
    """A file, dataset or batch is missing or malformed (also a ``ValueError``)."""


class PluginError(MPMError, TypeError):
    """A plugin called the registration API wrongly (also a ``TypeError``, what
    the call raised before): the message says what the call needs."""


class ExecutionError(MPMError, RuntimeError):
    """A step failed while running (a measuring subprocess, a streamed decode):
    the message says what to do instead (also a ``RuntimeError``, what these
    raised before)."""


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``name``, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` or an empty string."""
    hit = nearest(name, candidates)
    return f" Did you mean '{hit}'?" if hit else ""
