// The atlas map: regl-scatterplot draws the points (WebGL); a 2-D canvas under it draws density contours,
// one above it the labels, focus, search rings and query trail; histograms below brush-filter the points.
// Only finished gestures go back to Python (protocol.js); everything else stays in the browser.
import createScatterplot from 'regl-scatterplot';
import KDBush from 'kdbush';
import { scaleLinear } from 'd3-scale';
import { pointColours, cssGradient, GREY } from './colours.js';
import { contourPaths, drawContours } from './contours.js';
import { drawOverlay } from './overlay.js';
import { Histograms } from './histograms.js';
import { createDirectRenderer } from './renderer.js';
import { onRender, setFrameHeight, encodeEvent, sendValue, rowsOf, sameBytes } from './protocol.js';

const Q = 65535;
const MARGIN = 0.86; // the points fill this much of the square [-1, 1]^2 (room for contours and stars at the edges)
const CLICK_PX = 4; // a press that moves less is a click
const MODES = { lasso: 'lasso', box: 'panZoom', pan: 'panZoom' };

const $ = (id) => document.getElementById(id);
const S = {
  plot: null, key: null, n: 0, x: new Float32Array(0), y: new Float32Array(0), codes: new Uint8Array(0),
  names: null, legend: [], palette: [], continuous: false, colours: null, pyGrey: null, grey: null,
  ranges: {}, pyRanges: '{}', selected: new Uint32Array(0), pySelected: null, focus: null, linked: [],
  highlighted: [], labels: [], query: null, trail: [], drag: 'lasso', pyDrag: null, contours: [],
  showContours: true, hover: -1, box: null, width: 0, height: 0, toNdc: null, args: null,
  timings: {}, drawing: Promise.resolve(), spatialIndex: null, xScale: null, yScale: null, labelsShown: 0,
};
window.atlas = S; // for the tests and the benchmark: state, timings, screenOf(row), redrawPoints()

const hists = new Histograms($('hists'), () => S.ranges, {
  onBrush: () => scheduleGrey(),
  onBrushEnd: () => emit('filter', []),
});
S.hists = hists;

function emit(kind, rows) {
  const { bytes, seq } = encodeEvent(kind, rows, S.ranges, S.drag);
  S.lastEvent = { kind, rows: rows.length, seq };
  sendValue(bytes);
}

// ---- points
function loadPoints(args) {
  const n = args.codes.byteLength;
  const [x0, x1, y0, y1] = args.bounds;
  const span = Math.max(x1 - x0, y1 - y0);
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const k = (2 * MARGIN) / span;
  S.toNdc = (x, y) => [(x - cx) * k, (y - cy) * k];
  const q = new Uint16Array(new Uint8Array(args.xy).buffer, 0, 2 * n);
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  const ax = (x1 - x0) / Q;
  const ay = (y1 - y0) / Q;
  for (let i = 0; i < n; i++) {
    x[i] = (x0 + q[2 * i] * ax - cx) * k;
    y[i] = (y0 + q[2 * i + 1] * ay - cy) * k;
  }
  Object.assign(S, { n, x, y, codes: args.codes, key: args.points_key, spatialIndex: null, names: null, contours: [] });
  S.pendingText = { key: args.points_key, names: args.names };
}

// The hover names and the density contours wait until the points are drawn: at 100k points they took 60-90 ms
// of the first draw (names decoded and split, the density grid); until then a hovered point shows its row.
function loadAfterDraw() {
  const pending = S.pendingText;
  if (!pending || pending.key !== S.key) return;
  S.pendingText = null;
  S.names = pending.names && pending.names.byteLength ? new TextDecoder().decode(pending.names).split('\n') : null;
  S.contours = contourPaths(S.x, S.y);
  S.timings.contoured ??= performance.now();
  scheduleFrame();
}

function greyMask() {
  const grey = new Uint8Array(S.n);
  if (S.pyGrey && S.pyGrey.byteLength) {
    for (let i = 0; i < S.n; i++) grey[i] = (S.pyGrey[i >> 3] >> (i & 7)) & 1;
  }
  hists.markOutside(grey);
  return grey;
}

// Draws run one after another (the library refuses a draw while one is running); one waiting draw at most,
// which reads the state when it starts.
let drawQueued = false;
function drawPoints() {
  if (drawQueued) return S.drawing;
  drawQueued = true;
  S.drawing = S.drawing.then(() => {
    drawQueued = false;
    return drawNow();
  }).catch((error) => console.error('atlas: drawing the points failed', error));
  return S.drawing;
}

// Category per point (grey = the last colour) and a redraw of the points; the kd-tree is kept between draws.
function drawNow() {
  const grey = greyMask();
  S.grey = grey;
  const greyCode = S.colours.length - 1;
  const z = new Float32Array(S.n);
  let greyed = 0;
  for (let i = 0; i < S.n; i++) {
    z[i] = grey[i] ? greyCode : S.codes[i];
    greyed += grey[i];
  }
  S.greyed = greyed;
  S.spatialIndex ??= spatialIndex(S.x, S.y);
  const options = { zDataType: 'categorical', preventFilterReset: true, spatialIndex: S.spatialIndex };
  const started = performance.now();
  touch();
  return S.plot.draw({ x: S.x, y: S.y, z }, options).then(() => {
    S.timings.resolved ??= performance.now();
    orderGreyFirst(grey, greyed);
    touch();
    if (S.selected.length) S.plot.select(Array.from(S.selected), { preventEvent: true });
    S.plot.redraw();
    S.timings.lastDrawMs = performance.now() - started;
    requestAnimationFrame(() => {
      S.timings.drawn ??= performance.now();
      S.timings.drawCount = (S.timings.drawCount || 0) + 1;
      setTimeout(loadAfterDraw, 0);
    });
    updateStatus();
  });
}

// The kd-tree the lasso and hover search, built here from the typed arrays (kdbush, the library's own format):
// the library would build it from an array of [x, y] pairs, at 1M in a worker that receives them by structured
// clone, and it draws nothing until the tree is back (about 1.4 s of a 1M first draw; this takes ~0.2 s).
function spatialIndex(x, y) {
  const started = performance.now();
  const index = new KDBush(x.length, 16, Float32Array);
  for (let i = 0; i < x.length; i++) index.add(x[i], y[i]);
  index.finish();
  S.timings.kdTreeMs = performance.now() - started;
  S.timings.indexed ??= performance.now();
  return index.data;
}

// Greyed points are drawn first, so the others lie above them (the library appends the rows not named).
function orderGreyFirst(grey, greyed) {
  if (!greyed && !S.greyOrdered) return;
  const rows = [];
  for (let i = 0; i < grey.length; i++) if (grey[i]) rows.push(i);
  touch();
  S.plot.set({ pointOrder: rows.length ? rows : null });
  S.greyOrdered = rows.length > 0;
}

// fn at the next animation frame, once however often it is asked for before then.
function oncePerFrame(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}

const scheduleGrey = oncePerFrame(() => {
  drawPoints();
  hists.draw(S.width);
});

// ---- the plot
function createPlot() {
  const canvas = $('gl');
  S.xScale = scaleLinear().domain([-1, 1]).range([0, S.width]);
  S.yScale = scaleLinear().domain([-1, 1]).range([S.height, 0]);
  const size = S.args.point_size ?? (S.n > 300000 ? 2 : S.n > 30000 ? 3 : S.n > 3000 ? 4 : 6);
  const direct = S.args.direct_render ?? true; // false: the library's own renderer (a reference for benchmarks)
  S.plot = createScatterplot({
    ...(direct ? { renderer: createDirectRenderer(canvas, { defer: deferRender, rendered: onRendered }) } : {}), canvas, width: 'auto', height: 'auto', backgroundColor: [1, 1, 1, 0], pointSize: size,
    pointSizeSelected: 1, pointOutlineWidth: 1, pointColorActive: '#e4572e', pointColorHover: '#111111',
    opacityInactiveScale: 0.35, colorBy: 'valueA', lassoColor: [0, 0.47, 0.84, 1], lassoMinDelay: 15, lassoMinDist: 6,
    lassoInitiator: false, lassoOnLongPress: false, deselectOnDblClick: false, deselectOnEscape: false,
    actionKeyMap: {}, mouseMode: MODES[S.drag], xScale: S.xScale, yScale: S.yScale, opacity: S.n > 300000 ? 0.6 : 0.85,
    performanceMode: S.args.performance_mode ?? false,
  });
  S.plot.subscribe('view', ({ xScale, yScale }) => {
    S.xScale = xScale;
    S.yScale = yScale;
    if (S.deferring) previewTransform(); // the scales are updated after the (skipped) render
    scheduleFrame();
  });
  S.plot.subscribe('pointOver', (row) => {
    S.hover = row;
    showTooltip();
  });
  S.plot.subscribe('pointOut', () => {
    S.hover = -1;
    $('tooltip').style.display = 'none';
  });
  S.plot.subscribe('select', ({ points }) => { // a lasso ended
    touch();
    setSelection(Uint32Array.from(points), true);
  });
  S.plot.subscribe('lassoExtend', ({ coordinates }) => {
    S.lasso = coordinates;
    scheduleFrame();
  });
  S.plot.subscribe('lassoEnd', () => {
    touch();
    S.lasso = null;
    scheduleFrame();
  });
}

// ---- many points in software GL: while the view moves, the compositor moves and scales the last image
// (a CSS transform of the GL canvas) and the points are drawn again once the view rests for REST_MS; while a
// lasso is drawn (the camera is fixed) only the lasso line on the 2-D overlay changes.
const LIVE_LIMIT = 200000;
const REST_MS = 140;
let renderedView = null; // {view, x, y}: the camera and scale domains of the image on the canvas
let restTimer = 0;
let forceRender = false;

// What changes the image besides the camera is ours (a draw, a selection, the colours) or the lasso's, so the
// library's redraws for a hovered point alone are skipped there: at 1M each would be a full frame.
function touch() {
  S.imageDirty = true;
}

function deferRender() {
  S.liveLimited = S.n > (S.args.live_limit ?? LIVE_LIMIT);
  if (!S.liveLimited || !renderedView) return false;
  if (S.lasso) return true;
  if (forceRender) {
    forceRender = false;
    return false;
  }
  const view = S.plot.get('cameraView');
  if (view.every((v, i) => v === renderedView.view[i])) return !S.imageDirty;
  S.deferring = true;
  clearTimeout(restTimer);
  restTimer = setTimeout(() => {
    forceRender = true;
    S.plot.redraw();
  }, S.args.rest_ms ?? REST_MS);
  S.timings.deferred = (S.timings.deferred || 0) + 1;
  return true;
}

function onRendered() {
  if (!S.xScale) return;
  renderedView = { view: Float32Array.from(S.plot.get('cameraView')), x: S.xScale.domain(), y: S.yScale.domain() };
  $('gl').style.transform = '';
  S.deferring = false;
  S.imageDirty = false;
  S.timings.rendered = (S.timings.rendered || 0) + 1;
}

// The affine map from the rendered image's pixels to where they are now (both axes linear in NDC).
function previewTransform() {
  const [r0, r1] = renderedView.x;
  const [d0, d1] = S.xScale.domain();
  const [f0, f1] = renderedView.y;
  const [e0, e1] = S.yScale.domain();
  const sx = (r1 - r0) / (d1 - d0);
  const sy = (f1 - f0) / (e1 - e0);
  const tx = ((r0 - d0) / (d1 - d0)) * S.width;
  const ty = S.height * (1 - sy) - ((f0 - e0) / (e1 - e0)) * S.height;
  $('gl').style.transform = `matrix(${sx}, 0, 0, ${sy}, ${tx}, ${ty})`;
}

function setSelection(rows, fromUser, kind = 'select') {
  S.selected = rows;
  hists.setSelection(rows);
  hists.draw(S.width);
  updateStatus();
  if (fromUser) emit(kind, rows);
}

// ---- gestures the library does not do: a click (every mode), the box, Escape, the toolbar
let down = null; // where the left button went down on the points, until it is released
let moved = false; // the press went further than CLICK_PX (a lasso that ends where it began is no click)
let mouse = [0, 0];
const mapEl = $('map');
const local = (event) => {
  const rect = $('gl').getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
};
mapEl.addEventListener('mousedown', (event) => {
  if (event.target !== $('gl') || event.button !== 0) return;
  down = local(event);
  moved = false;
  if (S.drag === 'box') {
    event.stopPropagation(); // no pan: the box is ours
    S.box = [...down, ...down];
  }
}, true);
window.addEventListener('mousemove', (event) => {
  mouse = local(event);
  if (down && Math.hypot(mouse[0] - down[0], mouse[1] - down[1]) >= CLICK_PX) moved = true;
  if (S.box && down) {
    S.box = [...down, ...mouse];
    scheduleFrame();
  }
  if (S.hover >= 0) showTooltip();
});
window.addEventListener('mouseup', () => {
  S.lasso = null; // the library ends a lasso that drew no line without an event
  if (!S.box) return;
  const [x0, y0, x1, y1] = S.box;
  S.box = null;
  scheduleFrame();
  if (!moved) return; // a click: handled below
  const [ax, bx] = [S.xScale.invert(Math.min(x0, x1)), S.xScale.invert(Math.max(x0, x1))];
  const [ay, by] = [S.yScale.invert(Math.max(y0, y1)), S.yScale.invert(Math.min(y0, y1))];
  const rows = [];
  for (let i = 0; i < S.n; i++) if (S.x[i] >= ax && S.x[i] <= bx && S.y[i] >= ay && S.y[i] <= by) rows.push(i);
  const selection = Uint32Array.from(rows);
  touch();
  if (rows.length) S.plot.select(rows, { preventEvent: true });
  else S.plot.deselect({ preventEvent: true });
  setSelection(selection, true);
});
mapEl.addEventListener('click', (event) => {
  if (event.target !== $('gl')) return;
  event.stopPropagation(); // the library's click would select the point: a click is ours
  const press = down;
  down = null;
  if (!press || moved) return;
  if (S.hover >= 0) emit('click', [S.hover]);
  else clearSelection();
}, true);
window.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') clearSelection();
});

function clearSelection() {
  touch();
  S.plot.deselect({ preventEvent: true });
  setSelection(new Uint32Array(0), true, 'clear');
}

function setDrag(mode, fromUser) {
  S.drag = mode;
  S.plot?.set({ mouseMode: MODES[mode] });
  for (const button of document.querySelectorAll('#toolbar [data-drag]')) {
    button.classList.toggle('on', button.dataset.drag === mode);
  }
  $('map').dataset.drag = mode;
  if (fromUser) emit('drag', []);
}
for (const button of document.querySelectorAll('#toolbar [data-drag]')) {
  button.addEventListener('click', () => setDrag(button.dataset.drag, true));
}
$('reset').addEventListener('click', () => S.plot?.reset());

// ---- text around the points
function legendText(row) {
  const code = S.codes[row];
  if (!S.continuous) return S.legend[code] ?? `category ${code}`;
  return `${S.legend[0]} … ${S.legend[1]}: ${Math.round((code / 255) * 100)} %`;
}

function showTooltip() {
  const tip = $('tooltip');
  if (S.hover < 0 || S.hover >= S.n) return;
  const name = S.names ? S.names[S.hover] : `row ${S.hover}`;
  tip.textContent = `${name} · ${legendText(S.hover)}${S.grey?.[S.hover] ? ' (filtered out)' : ''}`;
  tip.style.display = 'block';
  tip.style.left = `${Math.min(mouse[0] + 12, S.width - tip.offsetWidth - 4)}px`;
  tip.style.top = `${Math.max(mouse[1] - 28, 2)}px`;
}

function drawLegend() {
  const el = $('legend');
  el.replaceChildren();
  const row = (colour, text, gradient) => {
    const item = document.createElement('div');
    const swatch = document.createElement('span');
    swatch.className = gradient ? 'swatch wide' : 'swatch';
    swatch.style.background = colour;
    item.append(swatch, document.createTextNode(text));
    el.append(item);
  };
  if (S.continuous) row(cssGradient(S.palette), `${S.legend[0]} → ${S.legend[1]}`, true);
  else {
    const shown = S.legend.slice(0, 16);
    shown.forEach((name, k) => row(S.palette[k], name));
    if (S.legend.length > shown.length) el.append(`+ ${S.legend.length - shown.length} more`);
  }
  row(GREY, 'filtered out');
  el.lastChild.id = 'legend-grey';
  updateStatus();
}

function updateStatus() {
  const parts = [`${S.n.toLocaleString('en')} tracks`];
  if (S.selected.length) parts.push(`${S.selected.length.toLocaleString('en')} selected`);
  if (S.greyed) parts.push(`${S.greyed.toLocaleString('en')} filtered out`);
  $('status').textContent = parts.join(' · ');
  if ($('legend-grey')) $('legend-grey').style.display = S.greyed ? '' : 'none';
}

// ---- the 2-D layers, redrawn once per frame after a pan, zoom or change
// Drawn on the CPU (willReadFrequently): a GPU canvas costs a full-size upload and composite per frame, which in
// software GL (SwiftShader) was most of the frame.
const context2d = (id) => $(id).getContext('2d', { willReadFrequently: S.args?.cpu_overlay ?? true });
const scheduleFrame = oncePerFrame(() => {
  const dpr = window.devicePixelRatio || 1;
  for (const id of ['under', 'over']) {
    const ctx = context2d(id);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, S.width, S.height);
  }
  if (S.showContours && S.contours.length) drawContours(context2d('under'), S.contours, S.xScale, S.yScale);
  S.labelsShown = drawOverlay(context2d('over'), S, S.xScale, S.yScale, S.width, S.height);
  S.timings.frames = (S.timings.frames || 0) + 1;
});

function sizeCanvases() {
  const dpr = window.devicePixelRatio || 1;
  for (const id of ['under', 'over']) {
    $(id).width = Math.floor(S.width * dpr);
    $(id).height = Math.floor(S.height * dpr);
  }
}

// ---- one render message from Python
async function render(args) {
  S.timings.received ??= performance.now();
  S.args = args;
  S.width = document.body.clientWidth;
  S.height = args.height;
  $('map').style.height = `${args.height}px`;
  sizeCanvases();
  const newPoints = args.points_key !== S.key;
  if (newPoints) {
    await S.drawing;
    loadPoints(args);
    S.timings.loaded ??= performance.now();
  }
  Object.assign(S, { legend: args.legend, palette: args.palette, continuous: args.continuous });
  if (!S.plot) {
    S.drag = args.drag;
    try {
      createPlot();
      S.timings.created = performance.now();
    } catch (error) {
      $('status').textContent = `The map needs WebGL, which this browser does not give: ${error}`;
      setFrameHeight(document.body.scrollHeight);
      return;
    }
  }
  if (args.drag !== S.pyDrag) {
    S.pyDrag = args.drag;
    setDrag(args.drag, false);
  }
  const colours = pointColours(args.palette, args.continuous);
  if (JSON.stringify(colours) !== JSON.stringify(S.colours)) {
    S.colours = colours;
    touch();
    S.plot.set({ pointColor: colours });
  }
  hists.set(args.histograms, args.hist_codes, S.n);
  const pyRanges = JSON.stringify(args.ranges);
  let rangesChanged = pyRanges !== S.pyRanges;
  if (rangesChanged) {
    S.pyRanges = pyRanges;
    if (pyRanges === JSON.stringify(S.ranges)) rangesChanged = false; // Python echoes the brush: drawn already
    S.ranges = structuredClone(args.ranges);
  }
  const greyChanged = !sameBytes(args.greyed, S.pyGrey);
  S.pyGrey = args.greyed;
  if (newPoints || greyChanged || rangesChanged) {
    touch();
    if (newPoints) S.plot.deselect({ preventEvent: true });
    drawPoints();
  }
  if (newPoints || !sameBytes(args.selected, S.pySelected)) {
    S.pySelected = args.selected;
    const rows = rowsOf(args.selected);
    await S.drawing;
    touch();
    if (rows.length) S.plot.select(Array.from(rows), { preventEvent: true });
    else S.plot.deselect({ preventEvent: true });
    setSelection(rows, false);
  }
  S.focus = args.focus;
  S.linked = rowsOf(args.linked);
  S.highlighted = rowsOf(args.highlighted);
  S.labels = args.labels
    .map(([x, y, text, weight]) => ({ x: S.toNdc(x, y)[0], y: S.toNdc(x, y)[1], text, weight }))
    .sort((a, b) => b.weight - a.weight);
  S.query = args.query ? S.toNdc(...args.query) : null;
  S.trail = args.trail.map(([x, y]) => S.toNdc(x, y));
  S.showContours = args.contours;
  drawLegend();
  updateStatus();
  hists.draw(S.width);
  scheduleFrame();
  setFrameHeight(document.body.scrollHeight);
}

window.addEventListener('resize', () => {
  if (!S.args) return;
  touch();
  S.width = document.body.clientWidth;
  sizeCanvases();
  hists.draw(S.width);
  scheduleFrame();
});

// For tests and the benchmark: where a row is drawn now, in page pixels of the iframe.
S.redrawPoints = () => drawPoints();
S.screenOf = (row) => {
  const rect = $('gl').getBoundingClientRect();
  return [rect.left + S.xScale(S.x[row]), rect.top + S.yScale(S.y[row])];
};
S.screenOfPoint = (x, y) => {
  const rect = $('gl').getBoundingClientRect();
  const [nx, ny] = S.toNdc(x, y);
  return [rect.left + S.xScale(nx), rect.top + S.yScale(ny)];
};

onRender(render);
