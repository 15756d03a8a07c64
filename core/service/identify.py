"""When a live stream counts as *identified*: the rule, and the state it keeps from one update to the next.

A sliding window's top-1 is often right before it is sure, and music that is not in the library still has a
nearest track (its similarity is high: the space ranks by what music sounds like). So one update never
identifies anything. A track is identified once it has been the top-1 of ``confirm`` consecutive updates, each
with a score margin over the second track of at least ``min_margin``, a passage match of at least
``min_passage`` and its passages found in time order (:func:`core.search.passages.passage_alignment`: at least
``min_aligned`` of the window's chunks match the track's passages one after another, as a recording of it does
and a look-alike does not). Where the run has landmark fingerprints the evidence is their votes instead: the top-1's
landmarks at one time offset, at least ``min_votes`` (a recording of a track piles them up, other music gathers a
few by chance), with the margin. ``python -m benchmarks.bench_listen`` calibrates the thresholds on a run's streams of music
that is not in its library (none of them identified) and measures them on other streams; the defaults identify
exact copies and leave look-alikes alone on the synthetic test library, and the README gives what they do on real
music. Once identified, a track stays the answer while it is the top-1; a different track replaces it only by
passing the same rule (a switch of track mid-stream), and silence clears the streak but keeps the answer.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from core.base.config import doc


@dataclasses.dataclass(frozen=True)
class IdentifyRule:
    """The identification rule's thresholds (see the module docstring)."""

    confirm: int = doc(2, "consecutive updates with the same top-1: one lucky window never identifies", at_least=1)
    min_margin: float = doc(0.0, "score of the top-1 over the second (scores are means of two cosines)")
    min_passage: float = doc(0.6, "the top-1's passage match: the window's chunks found in that track")
    min_aligned: float = doc(6, "window chunks (0.5 s apart) matching the top-1's passages at one time offset: "
                                "3 s of music found in order")
    min_votes: float = doc(40, "the top-1's landmark votes at one time offset (with fingerprints, instead of the "
                               "passage match and alignment)")

    def passes(self, scores: np.ndarray, passage: float, aligned: float, votes: float = float("nan")) -> bool:
        """Whether one update's ranking is confident: ``scores`` [shape=(k,)] best first, and the top-1's landmark
        ``votes`` where the run has fingerprints, else its ``passage`` match and ``aligned`` chunks (NaN when the
        run has none of them: then only the margin counts)."""
        if len(scores) == 0:
            return False
        margin = float(scores[0] - scores[1]) if len(scores) > 1 else float(scores[0])
        if not votes >= 0:  # NaN: no fingerprints
            evidence = not (passage < self.min_passage) and not (aligned < self.min_aligned)
        else:
            evidence = votes >= self.min_votes
        return margin >= self.min_margin and evidence


@dataclasses.dataclass
class Identification:
    """What the rule has concluded so far on one stream.

    Attributes
    ----------
    row : int or None
        The identified library row (None until one passes the rule).
    seconds : float or None
        Time into the stream at which it was identified.
    candidate : int or None
        The current top-1, and ``streak`` the consecutive confident updates it has had.
    """

    rule: IdentifyRule = IdentifyRule()
    row: Optional[int] = None
    seconds: Optional[float] = None
    candidate: Optional[int] = None
    streak: int = 0

    def step(self, rows: np.ndarray, scores: np.ndarray, passage: float, aligned: float, *,
             seconds: float, votes: float = float("nan")) -> Optional[int]:
        """Take one update (library ``rows`` [shape=(k,)] and their ``scores``, best first; the top-1's
        ``passage`` match, ``aligned`` chunks and landmark ``votes``; ``seconds`` into the stream) and return the
        identified row, or None."""
        if len(rows) == 0:
            return self.silence()
        top = int(rows[0])
        confident = self.rule.passes(np.asarray(scores, dtype=np.float64), passage, aligned, votes)
        self.streak = self.streak + 1 if confident and top == self.candidate else int(confident)
        self.candidate = top
        if self.streak >= self.rule.confirm and top != self.row:
            self.row, self.seconds = top, float(seconds)
        return self.row

    def silence(self) -> Optional[int]:
        """An update with nothing to match (a silent window): the streak starts again, the answer stays."""
        self.candidate, self.streak = None, 0
        return self.row
