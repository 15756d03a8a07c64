"""The atlas map: every track of a run as a WebGL point in the browser, up to a million.

A Streamlit custom component (components v1, an iframe) built on regl-scatterplot; its bundle lives in
``ui/atlas/frontend/build`` (built from ``frontend/src`` by ``npm run build``, committed, so no node is needed
to run the app). Pan, zoom, hover, the lasso, the box and the histogram brushes run in the browser with no
Streamlit rerun; only a finished gesture comes back, as an :class:`AtlasEvent` with compact row ids.

What travels, per point: x and y as uint16 quantised over ``bounds`` (4 B) and a uint8 colour code (1 B).
Row lists go both ways as uint32 little-endian bytes, the greyed mask as a little-endian bit set.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import streamlit.components.v1 as components

BUILD_DIR = Path(__file__).resolve().parent / "frontend" / "build"
NAMES_LIMIT = 200_000  # hover names travel as text (~20 B each): above this the hover shows legend + row
POINTS_LIMIT = 2_000_000  # row ids travel as uint32; far above the million the map is made for
QUANT_STEPS = 65_535  # uint16 quantisation: one step is 1/65535 of the bounds' span
DRAG_MODES = ("lasso", "box", "pan")
EVENT_KINDS = ("select", "click", "clear", "filter", "drag")
# Browser-side switches, for benchmarks against the naive way: direct_render (False: regl-scatterplot's own
# renderer), cpu_overlay (False: GPU 2-D canvases), performance_mode (square points, no blending), live_limit
# (points above which a pan or zoom moves the last image), rest_ms (the rest before the points are redrawn)
RENDER_OPTIONS = ("direct_render", "cpu_overlay", "performance_mode", "live_limit", "rest_ms")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

_component = components.declare_component("timbre_atlas", path=str(BUILD_DIR))


@dataclasses.dataclass(frozen=True)
class AtlasPoints:
    """The points of one map, built once per (run, projection, colouring) and cached by the page.

    Attributes
    ----------
    key : str
        Content id: the browser keeps its GPU buffers while the key is unchanged.
    xy : bytes
        uint16 little-endian pairs [shape=(n, 2)] quantised over ``bounds``.
    bounds : tuple of float
        ``(x0, x1, y0, y1)`` in projection units.
    codes : bytes
        uint8 [shape=(n,)]: category index (categorical) or a 0..255 value (continuous).
    palette : tuple of str
        ``"#rrggbb"`` per category, or the stops of a continuous scale (low to high).
    legend : tuple of str
        Category names (categorical) or ``(low text, high text)`` (continuous).
    continuous : bool
        Whether ``codes`` are values on the ``palette`` scale rather than categories.
    names : tuple of str or None
        Hover text per row; None above :data:`NAMES_LIMIT` (the hover then shows the legend and the row).
    """

    key: str
    xy: bytes
    bounds: tuple[float, float, float, float]
    codes: bytes
    palette: tuple[str, ...]
    legend: tuple[str, ...]
    continuous: bool
    names: tuple[str, ...] | None

    @property
    def n(self) -> int:
        return len(self.codes)

    def positions(self) -> np.ndarray:
        """The de-quantised positions, np.ndarray [shape=(n, 2)] float64, within one step of the originals."""
        q = np.frombuffer(self.xy, dtype="<u2").reshape(-1, 2).astype(np.float64) / QUANT_STEPS
        x0, x1, y0, y1 = self.bounds
        return np.column_stack([x0 + q[:, 0] * (x1 - x0), y0 + q[:, 1] * (y1 - y0)])


@dataclasses.dataclass(frozen=True)
class MapLabel:
    """A text on the map (a cluster's name at its centre); ``weight`` (its tracks) decides who shows on collision."""

    x: float
    y: float
    text: str
    weight: int


@dataclasses.dataclass(frozen=True)
class Histogram:
    """A linked histogram beside the map.

    Attributes
    ----------
    name : str
        Its id and title ("tempo", "duration", "tag:rock", "cluster", "label"); a ``filter`` event's ranges use it.
    codes : bytes
        uint8 [shape=(n,)]: the bin of each track, 255 = no value.
    bins : tuple of str
        The label of each bin (at most 255).
    """

    name: str
    codes: bytes
    bins: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class AtlasEvent:
    """A finished gesture in the browser.

    Attributes
    ----------
    kind : str
        "select" (lasso / box), "click", "clear" (Escape or a click on empty space), "filter" (a histogram
        brush ended) or "drag" (the drag mode was changed in the map's toolbar).
    rows : np.ndarray [shape=(k,)] int64
        Rows of the points: the selected set for "select", the one clicked row for "click", else empty.
    ranges : dict
        ``{histogram name: [first bin, last bin]}`` brushed now (empty: no brush). Sent with every event.
    drag : str
        The drag mode now: "lasso", "box" or "pan".
    seq : int
        Increases with every gesture (across page changes too), so a page tells a new event from a rerun.
    """

    kind: str
    rows: np.ndarray
    ranges: dict
    drag: str
    seq: int


def _check_colours(palette: Sequence[str]) -> tuple[str, ...]:
    palette = tuple(palette)
    bad = [c for c in palette if not isinstance(c, str) or not _COLOUR.match(c)]
    if not palette or bad:
        raise ValueError(f"palette must be '#rrggbb' colours, got {bad[:3] or 'none'}")
    return palette


def atlas_points(x: np.ndarray, y: np.ndarray, codes: np.ndarray, *, palette: Sequence[str], legend: Sequence[str],
                 continuous: bool = False, names: Sequence[str] | None = None, key: str) -> AtlasPoints:
    """Quantise a map's points for :func:`atlas_map`.

    Parameters
    ----------
    x, y : np.ndarray [shape=(n,)]
        Positions in projection units (finite).
    codes : np.ndarray [shape=(n,)]
        Integer category index per point (< len(palette)) or, with ``continuous``, a 0..255 value.
    palette : sequence of str
        ``"#rrggbb"`` per category, or at least two stops of a continuous scale.
    legend : sequence of str
        A name per category, or ``(low text, high text)`` with ``continuous``.
    continuous : bool
        Codes are values on a scale, not categories.
    names : sequence of str, optional
        Hover text per point; dropped above :data:`NAMES_LIMIT` points.
    key : str
        Content id of these points (e.g. run, projection and colouring): the browser reuses its buffers while
        it is unchanged, so it must change whenever anything here does.

    Returns
    -------
    AtlasPoints
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    codes = np.asarray(codes).ravel()
    n = len(x)
    if len(y) != n or len(codes) != n:
        raise ValueError(f"x, y and codes must have one value per point, got {n}, {len(y)} and {len(codes)}")
    if n > POINTS_LIMIT:
        raise ValueError(f"{n} points is over the map's limit of {POINTS_LIMIT}")
    if n and not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (a projection with NaN or inf positions)")
    if not key:
        raise ValueError("key must name the points' content")
    palette = _check_colours(palette)
    legend = tuple(str(t) for t in legend)
    if codes.size and not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integers, got {codes.dtype}")
    if not continuous and len(palette) > 255:
        raise ValueError(f"at most 255 categories, got {len(palette)}")
    top = 256 if continuous else len(palette)
    if codes.size and (codes.min() < 0 or codes.max() >= top):
        raise ValueError(f"codes must lie in 0..{top - 1}, got {codes.min()}..{codes.max()}")
    if continuous and (len(palette) < 2 or len(legend) != 2):
        raise ValueError("a continuous scale needs at least two palette stops and a (low, high) legend")
    if not continuous and len(legend) != len(palette):
        raise ValueError(f"one legend name per palette colour, got {len(legend)} names for {len(palette)} colours")
    if names is not None:
        names = tuple(str(s) for s in names) if n <= NAMES_LIMIT else None
        if names is not None and len(names) != n:
            raise ValueError(f"one name per point, got {len(names)} for {n} points")
    x0, x1 = (float(x.min()), float(x.max())) if n else (0.0, 1.0)
    y0, y1 = (float(y.min()), float(y.max())) if n else (0.0, 1.0)
    x1, y1 = (x1 if x1 > x0 else x0 + 1.0), (y1 if y1 > y0 else y0 + 1.0)  # one point or a line: a unit span
    q = np.empty((n, 2), dtype="<u2")
    q[:, 0] = np.rint((x - x0) / (x1 - x0) * QUANT_STEPS)
    q[:, 1] = np.rint((y - y0) / (y1 - y0) * QUANT_STEPS)
    return AtlasPoints(key=str(key), xy=q.tobytes(), bounds=(x0, x1, y0, y1), codes=codes.astype(np.uint8).tobytes(),
                       palette=palette, legend=legend, continuous=bool(continuous), names=names)


def rows_bytes(rows: Sequence[int] | np.ndarray | None, *, n: int, name: str) -> bytes:
    """Rows as uint32 little-endian bytes, each checked to lie in 0..n-1."""
    rows = np.asarray([] if rows is None else rows).ravel()
    if rows.size and not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"{name} must be integer rows, got {rows.dtype}")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"{name} rows must lie in 0..{n - 1}, got {rows.min()}..{rows.max()}")
    return rows.astype("<u4").tobytes()


def mask_bytes(mask: np.ndarray | None, *, n: int) -> bytes:
    """A bool mask [shape=(n,)] as a little-endian bit set (bit i of byte i // 8 = row i); empty for None."""
    if mask is None:
        return b""
    mask = np.asarray(mask).ravel()
    if mask.dtype != bool or len(mask) != n:
        raise ValueError(f"greyed must be a bool mask with one value per point ({n}), got {mask.dtype} of {len(mask)}")
    return np.packbits(mask, bitorder="little").tobytes()


def decode_event(value: bytes | None) -> AtlasEvent | None:
    """The :class:`AtlasEvent` in the bytes the browser sends, or None when there are none yet.

    The layout: uint32 LE header length, the header (UTF-8 JSON: kind, ranges, drag, seq), padding to a
    multiple of 4, then the rows as uint32 LE.
    """
    if not value:
        return None
    value = bytes(value)
    if len(value) < 4:
        raise ValueError(f"an atlas event of {len(value)} bytes is too short")
    size = int.from_bytes(value[:4], "little")
    if 4 + size > len(value):
        raise ValueError(f"an atlas event's header of {size} bytes overruns its {len(value)} bytes")
    header = json.loads(value[4:4 + size].decode("utf-8"))
    start = 4 + size + (-(4 + size) % 4)
    rows = np.frombuffer(value[start:], dtype="<u4").astype(np.int64)
    if header.get("kind") not in EVENT_KINDS or header.get("drag") not in DRAG_MODES:
        raise ValueError(f"an atlas event of unknown kind or drag mode: {header}")
    ranges = {str(k): [int(v[0]), int(v[1])] for k, v in dict(header.get("ranges") or {}).items()}
    return AtlasEvent(kind=header["kind"], rows=rows, ranges=ranges, drag=header["drag"], seq=int(header["seq"]))


def _labels(labels: Sequence[MapLabel]) -> list[list]:
    return [[float(label.x), float(label.y), str(label.text), int(label.weight)] for label in labels]


def _histograms(histograms: Sequence[Histogram], n: int) -> tuple[list[dict], bytes]:
    """The histograms' titles and bins as JSON, their codes concatenated in one bytes (n each)."""
    meta, parts = [], []
    for hist in histograms:
        if len(hist.codes) != n:
            raise ValueError(f"histogram {hist.name!r} has {len(hist.codes)} codes for {n} points")
        if not 0 < len(hist.bins) < 255:
            raise ValueError(f"histogram {hist.name!r} needs 1..254 bins, got {len(hist.bins)}")
        meta.append({"name": str(hist.name), "bins": [str(b) for b in hist.bins]})
        parts.append(bytes(hist.codes))
    return meta, b"".join(parts)


def _ranges(ranges: Mapping | None, histograms: Sequence[Histogram]) -> dict:
    known = {hist.name: len(hist.bins) for hist in histograms}
    out = {}
    for name, (first, last) in dict(ranges or {}).items():
        if name in known:  # a brush on a histogram no longer shown is dropped, not an error
            first, last = sorted((int(first), int(last)))
            out[name] = [max(first, 0), min(last, known[name] - 1)]
    return out


def _digest(points_key: str, parts: Mapping[str, bytes]) -> str:
    """A digest of the bytes args: Streamlit's frontend re-sends a render only when the JSON args change."""
    digest = hashlib.blake2b(points_key.encode(), digest_size=16)
    for name, data in parts.items():
        digest.update(f"{name}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def atlas_map(points: AtlasPoints, *, key: str, selected: np.ndarray | None = None, focus: int | None = None,
              linked: Sequence[int] = (), highlighted: Sequence[int] = (), greyed: np.ndarray | None = None,
              labels: Sequence[MapLabel] = (), contours: bool = True, histograms: Sequence[Histogram] = (),
              ranges: dict | None = None, drag: str = "lasso", query: tuple[float, float] | None = None,
              trail: Sequence[tuple[float, float]] = (), height: int = 640,
              point_size: float | None = None, render_options: Mapping | None = None) -> AtlasEvent | None:
    """Draw the atlas map; return the last finished gesture (:class:`AtlasEvent`), or None before the first.

    Parameters
    ----------
    points : AtlasPoints
        From :func:`atlas_points`.
    key : str
        The Streamlit widget key (one per map on a page).
    selected : np.ndarray [shape=(k,)], optional
        Rows of the current selection: highlighted, the others dimmed a little; a part of each histogram bar.
    focus : int, optional
        The clicked track, drawn as a star.
    linked : sequence of int
        Its neighbours: lines from the focus to them.
    highlighted : sequence of int
        Search results, drawn ringed above the rest.
    greyed : np.ndarray [shape=(n,)] bool, optional
        True = filtered out: drawn grey, not hidden (a histogram brush greys more in the browser).
    labels : sequence of MapLabel
        Cluster names, each shown at the zoom where it fits without overlapping a heavier one.
    contours : bool
        Density contours under the points.
    histograms : sequence of Histogram
        Linked histograms below the map: brushing bins greys the points outside at once.
    ranges : dict, optional
        Brushed histogram ranges ``{name: [first bin, last bin]}`` to restore (e.g. from the last event).
    drag : str
        The drag mode to start in: "lasso", "box" or "pan" (changed by the toolbar in the map).
    query : (float, float), optional
        An outside query's position in projection units: a marker.
    trail : sequence of (float, float)
        The query's last positions, oldest first: a fading line.
    height : int
        Height of the map in pixels (the histograms add theirs below).
    point_size : float, optional
        Point diameter in pixels; by default from the number of points.
    render_options : mapping, optional
        Browser-side switches (:data:`RENDER_OPTIONS`), for benchmarks; the defaults are the measured best.

    Returns
    -------
    AtlasEvent or None
    """
    if drag not in DRAG_MODES:
        raise ValueError(f"drag must be one of {DRAG_MODES}, got {drag!r}")
    if not 120 <= int(height) <= 4000:
        raise ValueError(f"height must be 120..4000 pixels, got {height}")
    unknown = set(render_options or {}) - set(RENDER_OPTIONS)
    if unknown:
        raise ValueError(f"unknown render options {sorted(unknown)}; known: {RENDER_OPTIONS}")
    n = points.n
    if focus is not None and not 0 <= int(focus) < n:
        raise ValueError(f"focus row {focus} is not one of the {n} points")
    hist_meta, hist_codes = _histograms(histograms, n)
    names = points.names
    rows = {"selected": rows_bytes(selected, n=n, name="selected"), "linked": rows_bytes(linked, n=n, name="linked"),
            "highlighted": rows_bytes(highlighted, n=n, name="highlighted"),
            "greyed": mask_bytes(greyed, n=n), "hist_codes": hist_codes}
    value = _component(
        key=key, default=None, height=int(height), bytes_digest=_digest(points.key, rows),
        points_key=points.key, xy=points.xy, codes=points.codes, bounds=list(points.bounds),
        palette=list(points.palette), legend=list(points.legend), continuous=points.continuous,
        names=("\n".join(s.replace("\n", " ") for s in names).encode("utf-8") if names else b""),
        focus=None if focus is None else int(focus), labels=_labels(labels), contours=bool(contours),
        histograms=hist_meta, ranges=_ranges(ranges, histograms), drag=drag, **rows,
        query=None if query is None else [float(query[0]), float(query[1])],
        trail=[[float(a), float(b)] for a, b in trail], point_size=point_size, **dict(render_options or {}))
    return decode_event(value)
