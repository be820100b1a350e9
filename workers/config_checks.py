"""Checks that turn parsed TOML tables into typed values, with errors that name the key."""

from __future__ import annotations

from typing import Any

from workers.errors import ConfigError

REQUIRED = object()  # marks a schema key without a default


def list_of_tables(items: Any, where: str) -> list[dict]:
    """`items` if it is an array of tables, else a ConfigError naming `where`."""
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{where}: expected an array of tables ([[{where}]])")
    return items


def table(values: Any, schema: dict, where: str, *, overrides: dict | None = None) -> dict:
    """The keys of `schema` (key -> (type, default)) read from `values`, typed, with defaults."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a table ([{where}])")
    reject_unknown(values, schema, f"{where}.")
    values = {**values, **(overrides or {})}
    result = {}
    for key, (kind, default) in schema.items():
        if key not in values:
            if default is REQUIRED:
                raise ConfigError(f"{where}.{key}: missing required key")
            result[key] = default
            continue
        result[key] = _typed(values[key], kind, f"{where}.{key}")
    return result


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float) and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def string_list(value: list, where: str) -> tuple[str, ...]:
    """A non-empty list of non-empty strings, as a tuple."""
    if not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of non-empty strings")
    return tuple(value)


def reject_unknown(values: dict, known, prefix: str) -> None:
    """A ConfigError naming the first key of `values` that is not in `known`."""
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
