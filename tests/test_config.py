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
