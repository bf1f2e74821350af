"""What ``config.py`` and the per-API settings modules share: the settings error, typed scalar
settings, and the flags of a config-file section (``--nvcf-*`` -> ``[nvcf]``, ``--cuopt-server-*`` ->
``[cuopt_server]``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

#: A flag with a value that fills one key of a config-file section:
#: (flag, config-file key, type, metavar, help).
SectionOption = tuple[str, str, Callable[[str], Any], str, str]


class ConfigError(ValueError):
    """A setting is missing, of the wrong type, or names something unknown."""


def scalar_settings(
    data: Mapping[str, Any],
    converters: Mapping[str, Callable[[Any], Any]],
    *,
    also_known: Iterable[str] = (),
    section: str = "",
) -> dict[str, Any]:
    """The scalar settings given in ``data``, converted; unknown keys (other than ``also_known``)
    and unconvertible values are a :class:`ConfigError`. ``section`` prefixes the messages."""
    prefix = f"{section} " if section else ""
    unknown = set(data) - set(converters) - set(also_known)
    if unknown:
        raise ConfigError(f"unknown {prefix}settings {sorted(unknown)}")
    values: dict[str, Any] = {}
    for key, convert in converters.items():
        if data.get(key) is not None:
            try:
                values[key] = convert(data[key])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{prefix}setting {key!r}: {exc}") from exc
    return values


def add_section_arguments(
    parser: argparse.ArgumentParser, section: str, options: Sequence[SectionOption]
) -> None:
    """Adds ``options`` to ``parser``; each lands in ``args.<section>_<key>``."""
    for flag, key, kind, metavar, text in options:
        parser.add_argument(flag, dest=f"{section}_{key}", type=kind, metavar=metavar, help=text)


def merge_section_arguments(
    args: argparse.Namespace, settings: Mapping[str, Any], section: str, options: Sequence[SectionOption]
) -> dict[str, Any]:
    """The config file's ``section`` table with the flags of ``options`` that were given on top
    (the command line wins)."""
    values = dict(settings.get(section) or {})
    for _flag, key, *_ in options:
        value = getattr(args, f"{section}_{key}", None)
        if value is not None:
            values[key] = value
    return values
