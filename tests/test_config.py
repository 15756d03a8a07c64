"""core.base.config: every numeric setting of every job's config has a finite range that means something, and
values just past it (inf, NaN, one step beyond) are refused with one line naming the setting."""
from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from core.analysis.config import ClassifyConfig, ClusterConfig, TagsConfig
from core.base.config import bounds_of, check_bounds, doc
from core.base.errors import TimbreError
from core.data.config import ImportConfig, IngestConfig
from core.demo import DemoConfig
from core.evaluation.recording import RecordingEvalConfig
from core.runs.config import ReferenceConfig
from core.training.config import TrainConfig

CONFIGS = (TrainConfig, IngestConfig, DemoConfig, ReferenceConfig, ClassifyConfig, ClusterConfig, TagsConfig,
           RecordingEvalConfig, ImportConfig)


def numeric_fields(cls):
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        inner = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else kind
        if inner in (int, float):
            yield field, inner


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_number_has_a_lower_and_an_upper_bound_and_its_default_lies_inside(cls):
    for field, _ in numeric_fields(cls):
        low, above, high = bounds_of(field)
        assert (low is not None or above is not None) and high is not None, f"{cls.__name__}.{field.name}"
    cls()  # the defaults pass their own bounds


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_inf_nan_and_one_past_either_bound_are_refused_naming_the_setting(cls):
    for field, kind in numeric_fields(cls):
        low, above, high = bounds_of(field)
        tuple_field = isinstance(getattr(cls(), field.name), tuple)
        bad = [high + 1, (low if low is not None else above) - 1]
        if kind is float:
            bad += [math.inf, -math.inf, math.nan, high * 1.001 + 1e-9]
        for value in bad:
            given = (value, value) if tuple_field else value
            with pytest.raises(TimbreError, match=rf"\b{field.name} must be"):
                cls(**{field.name: given})


def test_a_field_without_bounds_still_refuses_a_number_that_is_not_finite():
    @dataclasses.dataclass(frozen=True)
    class Loose:
        gain: float = doc(1.0, "no bounds given")
        name: str = doc("x", "text is not checked")

        def __post_init__(self):
            check_bounds(self)

    Loose(gain=-1e300)
    for value in (math.inf, math.nan):
        with pytest.raises(TimbreError, match="gain must be a finite number"):
            Loose(gain=value)


def test_all_problems_are_named_in_one_message():
    with pytest.raises(TimbreError, match=r"lr must be at most 1.0 .*; mix_prob must be at most 1.0"):
        TrainConfig(lr=2.0, mix_prob=1.5)


# -- the one toolkit: typed values from text, configs from dicts, bounded flags ----------------------------------------

@pytest.mark.parametrize(("value", "kind", "expected"), [
    ("0.5", float, 0.5), ("3", int, 3), (3.0, int, 3), ("Yes", bool, True), ("off", bool, False),
    ("2000,8000", tuple[float, ...], (2000.0, 8000.0)), ("[3, 9]", tuple[float, ...], (3.0, 9.0)),
    ([8, 16], tuple[int, ...], (8, 16)), (None, typing.Optional[int], None), ("7", typing.Optional[int], 7),
    ("umap", typing.Literal["umap", "none"], "umap"),
])
def test_parse_value_reads_text_and_json_by_the_field_type(value, kind, expected):
    from core.base.config import parse_value

    assert parse_value(value, kind) == expected and type(parse_value(value, kind)) is type(expected)


@pytest.mark.parametrize(("value", "kind", "why"), [
    ("2.5", int, "invalid literal"), (2.5, int, "whole number"), ("maybe", bool, "true or false"),
    (True, float, "a number"), (3, str, "text"), ("tsne", typing.Literal["umap", "none"], "choose one of umap, none"),
    (5, tuple[int, ...], "list of values"),
])
def test_parse_value_refuses_what_the_type_cannot_take(value, kind, why):
    from core.base.config import parse_value

    with pytest.raises(ValueError, match=why):
        parse_value(value, kind)


def test_config_from_dict_parses_each_value_names_an_unknown_key_and_checks_the_bounds():
    from core.analysis.config import ClusterConfig
    from core.base.config import config_from_dict

    cfg = config_from_dict(ClusterConfig, {"input": ["embeddings"], "k_max": "6", "reduce": "none"})
    assert (cfg.input, cfg.k_max, cfg.reduce) == (("embeddings",), 6, "none")
    assert config_from_dict(TrainConfig, {"lr": "0.01"}, base=TrainConfig(epochs=3)).epochs == 3  # the rest kept
    with pytest.raises(TimbreError, match=r"recipe 'x': unknown cluster setting 'k' \(known: .*k_max"):
        config_from_dict(ClusterConfig, {"k": 3}, what="cluster setting", source="recipe 'x'")
    with pytest.raises(TimbreError, match=r"cluster setting 'k_max': 'many' is not a valid value"):
        config_from_dict(ClusterConfig, {"k_max": "many"}, what="cluster setting")
    with pytest.raises(TimbreError, match="k_max must be at most 1000"):
        config_from_dict(ClusterConfig, {"k_max": 1e9})
    with pytest.raises(TimbreError, match="shard_seconds must be a finite number|shard_seconds must be at most"):
        config_from_dict(IngestConfig, {"shard_seconds": "inf"})


@pytest.mark.parametrize("argv", [
    ["listen", "--run", "r", "f.wav", "--every", "0"], ["listen", "--run", "r", "f.wav", "--window", "inf"],
    ["listen", "--run", "r", "f.wav", "--speed", "nan"], ["recommend", "--run", "r", "f.wav", "-k", "0"],
    ["compare", "a", "b", "--sample", "-3"], ["tags", "--run", "r", "--max-patches", "999"],
    ["cluster", "--run", "r", "--k-max", "twelve"],
])
def test_a_flag_outside_its_bounds_is_refused_by_the_parser(argv, capsys):
    from core.cli import build_parser

    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2 and f"argument {next(w for w in argv[1:] if w.startswith('-') and w != '--run')}" \
        in capsys.readouterr().err
