"""What ``config.py`` and ``nvcf_config.py`` share: the settings error and typed scalar settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any


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
