"""Dataclass configs double as CLI definitions: every field becomes a ``--flag``."""
from __future__ import annotations

import argparse
import dataclasses
import math
import typing


def _field_help(field: dataclasses.Field) -> str:
    return field.metadata.get("help", "")


def add_dataclass_args(parser: argparse.ArgumentParser, cls, *, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--field-name`` option per field of dataclass ``cls`` (defaults shown in --help)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = f"{_field_help(field)} (default: {default})".replace("%", "%%")  # argparse formats help with %
        if kind is bool:
            parser.add_argument(flag, dest=field.name, default=default,
                                action=argparse.BooleanOptionalAction, help=help_text)
        elif typing.get_origin(kind) is typing.Literal:  # one of named variants
            parser.add_argument(flag, dest=field.name, type=str, choices=typing.get_args(kind), default=default,
                                help=help_text)
        elif typing.get_origin(kind) is typing.Union:  # Optional[X]
            inner = next(a for a in typing.get_args(kind) if a is not type(None))
            parser.add_argument(flag, dest=field.name, type=inner, default=default, help=help_text)
        elif typing.get_origin(kind) is tuple:
            inner = typing.get_args(kind)[0]
            if typing.get_origin(inner) is typing.Literal:  # a tuple of named variants: their names are the choices
                parser.add_argument(flag, dest=field.name, type=str, choices=typing.get_args(inner), nargs="+",
                                    default=default, help=help_text)
            else:
                parser.add_argument(flag, dest=field.name, type=inner, nargs="+", default=default, help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, type=kind, default=default, help=help_text)


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


MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_EPOCHS = 10_000  # ~5 h of training on 200 tracks on 2 cores; beyond, an ETA in days is a typo
MAX_SNR_DB = 300.0  # a signal-to-noise ratio this high adds no noise a float32 signal can hold
MAX_THREADS = 1024  # CPU threads or worker processes: more than any machine here has


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


def check_bounds(cfg, *, flag_of=lambda name: "flag --" + name.replace("_", "-")) -> None:
    """Raise :class:`core.base.errors.TimbreError` naming every field of ``cfg`` outside its bounds (a config's
    ``__post_init__`` calls it, so the command line, the jobs and the code share one check); ``flag_of(name)``
    says how the command line sets the field."""
    from core.base.errors import TimbreError

    problems = []
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        low, above, high = bounds_of(field)
        values = value if isinstance(value, tuple) else (value,)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            continue  # text, flags, None (not given)
        shown = f"(got {value}; {flag_of(field.name)})"
        if low is not None and not all(v >= low for v in values):  # "not >=" also refuses NaN
            problems.append(f"{field.name} must be at least {low} {shown}")
        elif above is not None and not all(v > above for v in values):
            problems.append(f"{field.name} must be more than {above} {shown}")
        elif high is not None and not all(v <= high for v in values):
            problems.append(f"{field.name} must be at most {high} {shown}")
        elif not all(math.isfinite(v) for v in values):
            problems.append(f"{field.name} must be a finite number {shown}")
    if problems:
        raise TimbreError("; ".join(problems))
