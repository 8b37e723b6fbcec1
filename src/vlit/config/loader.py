"""Build typed dataclasses from plain dicts (YAML, JSON) and back, naming the bad field on any error.

Why not pydantic: the configs are plain dataclasses that the rest of the code reads directly; this module
only adds the checks a YAML file needs (unknown keys, wrong types, unions picked by their `kind`).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from vlit.errors import VlitError

T = TypeVar("T")


_YAML_BOOL_WORDS = {False: ("no", "off", "false"), True: ("yes", "on", "true")}


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a float, as YAML 1.2 does. PyYAML follows YAML 1.1, where a float
    needs a dot and a signed exponent, so the `lr: 1e-4` a user writes would silently become a string."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_text(text: str) -> Any:
    """Parse YAML (or JSON) text with `YamlLoader`."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - YamlLoader is a SafeLoader


class ConfigError(VlitError):
    """A config value is missing, unknown or of the wrong type; the message names the dotted field."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if isinstance(value, bool) and not any(isinstance(a, bool) for a in args):
            # YAML 1.1 reads an unquoted no / off / yes / on as a boolean: give the word back.
            value = next((a for a in args if str(a).lower() in (_YAML_BOOL_WORDS[value])), value)
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        return _convert_union(args, value, where)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    if tp in (int, float, str, bool):
        # bool is an int in Python; a config that says `steps: true` is a mistake, not 1.
        if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {_type_name(tp)}")


def _convert_union(args: tuple, value: Any, where: str) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where}: a value is required")
    options = [a for a in args if a is not type(None)]
    classes = [a for a in options if dataclasses.is_dataclass(a)]
    if len(classes) == 1 and isinstance(value, dict):
        return from_dict(classes[0], value, where)
    if classes and isinstance(value, dict):
        # Unions of config classes are told apart by their `kind` literal, never by trying each.
        kinds = {k: c for c in classes for k in typing.get_args(typing.get_type_hints(c)["kind"])}
        kind = value.get("kind")
        if kind not in kinds:
            raise ConfigError(f"{where}.kind: {kind!r} is not one of {', '.join(map(repr, kinds))}")
        return from_dict(kinds[kind], value, where)
    errors = []
    for option in options:
        try:
            return _convert(option, value, where)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of the allowed types")


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from a mapping; unknown keys and bad values raise ConfigError naming the field."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{_join(where, unknown[0])}: unknown field (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(where, name)}: required field is missing")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        # __post_init__ validation names the field relative to its class; make it absolute.
        raise ConfigError(f"{where}.{e}" if where and not str(e).startswith(where) else str(e)) from None


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def to_dict(obj: Any) -> Any:
    """The plain-data form of a config (what YAML and JSON hold); `from_dict` inverts it."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict, in place; returns it."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        node: Any = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = node[_index(part, key, len(node))]
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
        value = load_text(raw)
        if isinstance(node, list):
            node[_index(parts[-1], key, len(node))] = value
        else:
            node[parts[-1]] = value
    return data


def _index(part: str, key: str, length: int) -> int:
    """A list index of an override; an override only changes entries, so it must name one that exists."""
    try:
        index = int(part)
    except ValueError:
        raise ConfigError(f"override {key!r}: {part!r} must be a list index") from None
    if not 0 <= index < length:
        raise ConfigError(f"override {key!r}: index {index} is out of range (the list has {length} entries)")
    return index


BUNDLED = Path(__file__).resolve().parents[1] / "configs"


def recipe_path(name: str | Path) -> Path:
    """A config file path, or the name of a recipe bundled with vlit (`llava15`, `hub/llava15-7b`)."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    bundled = BUNDLED / f"{name}.yaml"
    if bundled.exists():
        return bundled
    known = sorted(str(p.relative_to(BUNDLED).with_suffix("")) for p in BUNDLED.rglob("*.yaml"))
    raise ConfigError(f"{name}: no such config file or bundled recipe (bundled: {', '.join(known)})")


def load_yaml(cls: type[T], path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Read a YAML config file (or bundled recipe name) into `cls`; errors name the file and the field."""
    path = recipe_path(path)
    if path.exists() and not path.is_file():  # a folder, or a FIFO or device that would block or never end
        raise ConfigError(f"{path}: not a regular file")
    try:
        data = load_text(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    apply_overrides(data, overrides)
    try:
        # A config class may complete its raw data first (a recipe reads its `model.init_from` checkpoint).
        data = cls.resolve(data) if hasattr(cls, "resolve") and isinstance(data, dict) else data
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def save_yaml(obj: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))
