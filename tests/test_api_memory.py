"""api.memory: malloc's arenas bounded and freed pages returned after each audio query, so the API's memory
after bursts of large uploads returns to its baseline (figures: benchmarks/bench_api_memory.py)."""
from __future__ import annotations

import platform

import pytest

from api import deps, memory


@pytest.fixture(autouse=True)
def fresh_glibc_lookup(monkeypatch):
    memory._glibc.cache_clear()
    yield
    memory._glibc.cache_clear()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_on_glibc_arenas_are_bounded_and_freed_pages_returned():
    assert memory.bound_arenas() and memory.trim()


def test_the_reference_setting_leaves_malloc_as_it_is(monkeypatch):
    monkeypatch.setenv(memory.ENV, "default")
    assert not memory.bound_arenas() and not memory.trim()


def test_every_audio_query_ends_with_a_trim_even_when_it_fails(monkeypatch):
    trims = []
    monkeypatch.setattr(memory, "trim", lambda: trims.append(1) or True)
    slots = deps.AudioSlots(1, 0.1)
    with slots.held():
        pass
    with pytest.raises(ValueError), slots.held():
        raise ValueError("a bad upload")
    assert len(trims) == 2
    with slots.held():  # the slot was given back both times
        pass
