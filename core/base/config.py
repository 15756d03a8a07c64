"""The one toolkit for configs: a config is a frozen dataclass whose fields carry a default, a reason and bounds
(:func:`doc`); this module turns it into command-line flags (:func:`add_dataclass_args`), builds it from parsed
flags (:func:`dataclass_from_args`) or from a dict / JSON / TOML (:func:`config_from_dict`), parses one typed value
from text (:func:`parse_value`) and checks every bound (:func:`check_bounds`, :func:`bounded`). Nothing here
imports more than the standard library, so a command's ``--help`` stays fast."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from typing import Any, Mapping

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_EPOCHS = 10_000  # ~5 h of training on 200 tracks on 2 cores; beyond, an ETA in days is a typo
MAX_SNR_DB = 300.0  # a signal-to-noise ratio this high adds no noise a float32 signal can hold
MAX_THREADS = 1024  # CPU threads or worker processes: more than any machine here has
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def doc(default, why: str, *, at_least=None, above=None, at_most=None):
    """A dataclass field whose default carries a one-line reason (shown in ``--help``); ``at_least`` / ``above``
    and ``at_most`` bound its value, or each value of a tuple (checked by :func:`check_bounds`). A number's
    bounds are both given: a finite range that means something (probabilities in [0, 1], durations within what
    audio allows), so ``inf`` and NaN are refused too."""
    meta = {"help": why, "at_least": at_least, "above": above, "at_most": at_most}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def bounds_of(field: dataclasses.Field) -> tuple:
    """``(at_least, above, at_most)`` of a field made by :func:`doc` (None where unbounded)."""
    return tuple(field.metadata.get(key) for key in ("at_least", "above", "at_most"))


# -- typed values from text -------------------------------------------------------------------------------------

def unwrap(kind) -> tuple[Any, bool]:
    """``(kind without Optional, whether it was Optional)``: ``Optional[int]`` -> ``(int, True)``."""
    if typing.get_origin(kind) is typing.Union:
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return inner[0], len(inner) < len(typing.get_args(kind))
    return kind, False


def parse_value(value: Any, kind) -> Any:
    """``value`` as a ``kind`` (a type hint of a config field): text is parsed (``"0.5"``, ``"true"``,
    ``"2000,8000"`` or ``"[2000, 8000]"`` for a tuple), JSON / TOML values are checked (a list becomes a tuple).

    Raises
    ------
    ValueError
        Saying what was expected (the caller names the setting).
    """
    kind, optional = unwrap(kind)
    if value is None and optional:
        return None
    if typing.get_origin(kind) is tuple:
        items = _split(value) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError("expected a list of values")
        return tuple(parse_value(item, typing.get_args(kind)[0]) for item in items)
    if typing.get_origin(kind) is typing.Literal:
        if value not in typing.get_args(kind):
            raise ValueError(f"choose one of {', '.join(map(str, typing.get_args(kind)))}")
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in TRUE_WORDS + FALSE_WORDS:
            return value.lower() in TRUE_WORDS
        raise ValueError("expected true or false")
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected a whole number")
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        return float(value)
    if kind is str and not isinstance(value, str):
        raise ValueError("expected text")
    return value


def _split(text: str) -> list:
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part for part in text.replace(",", " ").split() if part]


# -- bounds --------------------------------------------------------------------------------------------------------

def out_of_bounds(name: str, value, *, at_least=None, above=None, at_most=None) -> str | None:
    """Why ``value`` (a number or a tuple of numbers) is outside its bounds, as "NAME must be ...", or None.
    Text, flags and None are not numbers and pass; ``inf`` and NaN never do."""
    values = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    if at_least is not None and not all(v >= at_least for v in values):  # "not >=" also refuses NaN
        return f"{name} must be at least {at_least}"
    if above is not None and not all(v > above for v in values):
        return f"{name} must be more than {above}"
    if at_most is not None and not all(v <= at_most for v in values):
        return f"{name} must be at most {at_most}"
    if not all(math.isfinite(v) for v in values):
        return f"{name} must be a finite number"
    return None


def check_bounds(cfg, *, flag_of=lambda name: "flag --" + name.replace("_", "-")) -> None:
    """Raise :class:`core.base.errors.TimbreError` naming every field of ``cfg`` outside its bounds (a config's
    ``__post_init__`` calls it, so the command line, the jobs and the code share one check); ``flag_of(name)``
    says how the command line sets the field."""
    from core.base.errors import TimbreError

    problems = []
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        low, above, high = bounds_of(field)
        problem = out_of_bounds(field.name, value, at_least=low, above=above, at_most=high)
        if problem:
            problems.append(f"{problem} (got {value}; {flag_of(field.name)})")
    if problems:
        raise TimbreError("; ".join(problems))


def typed(kind):
    """An argparse ``type=``: text parsed as ``kind`` by :func:`parse_value` (a config field's flag: the
    config checks its bounds, all of them in one message)."""
    def parse(text: str):
        try:
            return parse_value(text, kind)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names the type in its messages
    return parse


def bounded(kind, *, at_least=None, above=None, at_most=None, what: str = "value"):
    """An argparse ``type=`` for a flag that is no config field: text parsed as ``kind`` (:func:`typed`) and
    bounded as :func:`doc` bounds a field (``-k``: ``bounded(int, at_least=1, what="-k")``)."""
    parse_text = typed(kind)

    def parse(text: str):
        value = parse_text(text)
        problem = out_of_bounds(what, value, at_least=at_least, above=above, at_most=at_most)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem} (got {text})")
        return value

    parse.__name__ = parse_text.__name__
    return parse


def field_type(cls, name: str):
    """argparse ``type=`` of a flag that sets field ``name`` of config ``cls`` but has a default of its own
    (``tags --max-patches``: none means "the cache the dataset has"): the field's type and bounds."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    low, above, high = bounds_of(field)
    return bounded(unwrap(typing.get_type_hints(cls)[name])[0], at_least=low, above=above, at_most=high,
                   what=name)


# -- configs from flags and from dicts -------------------------------------------------------------------------------

def add_dataclass_args(parser: argparse.ArgumentParser, cls, *, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--field-name`` option per field of dataclass ``cls``: a bool is ``--x`` / ``--no-x``, a Literal
    gives its choices, a tuple takes several values. The default is shown in ``--help`` unless it is None (an
    optional setting whose help says what not giving it means)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind, _ = unwrap(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        shown = "" if default is None else f" (default: {default})"
        help_text = f"{field.metadata.get('help', '')}{shown}".replace("%", "%%")  # argparse formats help with %
        options = {"dest": field.name, "default": default, "help": help_text}
        inner = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else kind
        if typing.get_origin(kind) is tuple:
            options["nargs"] = "+"
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(inner) is typing.Literal:  # named variants: their names are the choices
            options.update(type=str, choices=typing.get_args(inner))
        else:
            options["type"] = typed(inner)
        parser.add_argument(flag, **options)


def dataclass_from_args(cls, args: argparse.Namespace, **overrides):
    """Build ``cls`` from parsed arguments (fields absent from ``args`` keep their defaults)."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            values[field.name] = overrides[field.name]
        elif hasattr(args, field.name):
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def config_from_dict(cls, values: Mapping[str, Any] | None, *, base=None, what: str = "setting", source: str = ""):
    """``cls`` (or ``base``, an instance of it, with these fields replaced) from a dict of field -> value: JSON
    of a job's spec, a TOML recipe, ``--set key=value`` text. Each value is parsed by its field's type
    (:func:`parse_value`); the config's ``__post_init__`` checks the bounds.

    Raises
    ------
    TimbreError
        A key that is no field of ``cls`` or a value its field cannot take, named (``what`` says what the keys
        are: "training setting", "cluster setting", ...; ``source``, where they come from: "recipe 'x'").
    """
    from core.base.errors import TimbreError

    where = f"{source}: " if source else ""
    fields = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    parsed = {}
    for key, value in (values or {}).items():
        if key not in fields:
            raise TimbreError(f"{where}unknown {what} {key!r} (known: {', '.join(sorted(fields))})")
        try:
            parsed[key] = parse_value(value, hints[key])
        except (TypeError, ValueError) as error:
            raise TimbreError(f"{where}{what} {key!r}: {value!r} is not a valid value ({error})") from None
    return dataclasses.replace(base, **parsed) if base is not None else cls(**parsed)
