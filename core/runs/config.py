"""The runs wing's settings, light to import (the command line builds its flags from them without torch):
:class:`ReferenceConfig`, how the frozen musicnn reference embeds a library (:mod:`core.runs.reference`)."""
from __future__ import annotations

import dataclasses

from core.base.config import MAX_SEED, MAX_THREADS, check_bounds, doc
from core.base.constants import MusicnnLayer


@dataclasses.dataclass(frozen=True)
class ReferenceConfig:
    """How the frozen musicnn reference embeds a library (each field is a ``python -m core reference`` flag)."""

    layer: MusicnnLayer = doc("max_pool", "musicnn layer averaged over a track's patches; max_pool (753-d) is the "
                                          "layer musicnn's authors use for transfer")
    max_patches: int = doc(16, "3 s patches per track, evenly spread (caps the cost of long tracks: ~0.05 s each)",
                           at_least=1, at_most=256)
    seed: int = doc(0, "seeds the maps and the query-by-recording evaluation", at_least=0, at_most=MAX_SEED)
    threads: int = doc(0, "torch CPU threads; 0 = all cores", at_least=0, at_most=MAX_THREADS)

    def __post_init__(self):
        check_bounds(self)
