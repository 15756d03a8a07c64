"""Dataclass configs double as CLI definitions: every field becomes a ``--flag``."""
from __future__ import annotations

import argparse
import dataclasses
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


def doc(default, why: str, *, at_least=None, above=None):
    """A dataclass field whose default carries a one-line reason (shown in ``--help``); ``at_least`` / ``above``
    bound its value (checked by :func:`check_bounds`)."""
    meta = {"help": why, "at_least": at_least, "above": above}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_bounds(cfg, *, flag_of=lambda name: "flag --" + name.replace("_", "-")) -> None:
    """Raise :class:`core.base.errors.TimbreError` naming every field of ``cfg`` outside its bounds (a config's
    ``__post_init__`` calls it, so the command line, the jobs and the code share one check); ``flag_of(name)``
    says how the command line sets the field."""
    from core.base.errors import TimbreError

    problems = []
    for field in dataclasses.fields(cfg):
        value, low, above = getattr(cfg, field.name), field.metadata.get("at_least"), field.metadata.get("above")
        flag = flag_of(field.name)
        if low is not None and not value >= low:  # "not >=" also refuses NaN
            problems.append(f"{field.name} must be at least {low} (got {value}; {flag})")
        if above is not None and not value > above:
            problems.append(f"{field.name} must be more than {above} (got {value}; {flag})")
    if problems:
        raise TimbreError("; ".join(problems))
