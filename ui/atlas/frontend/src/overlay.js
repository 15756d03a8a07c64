// What is drawn above the points on a 2-D canvas, in step with pan and zoom: search results ringed, the
// focus as a star with lines to its neighbours, an outside query with its fading trail, cluster labels
// (heaviest first, none overlapping, so more appear as one zooms in) and the box being dragged.

const HIGHLIGHT_LIMIT = 20000; // rings drawn at most (search results); beyond, the first ones
const LABEL_FONT = '600 13px system-ui, sans-serif';

function star(ctx, x, y, r) {
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const radius = k % 2 ? r * 0.45 : r;
    const angle = -Math.PI / 2 + (k * Math.PI) / 5;
    ctx[k ? 'lineTo' : 'moveTo'](x + radius * Math.cos(angle), y + radius * Math.sin(angle));
  }
  ctx.closePath();
}

const inside = (px, py, w, h) => px >= -20 && py >= -20 && px <= w + 20 && py <= h + 20;

// lines from one point to each of others (a focus or a query to its neighbours)
function spokes(ctx, [x, y], ends, colour) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  for (const [px, py] of ends) {
    ctx.moveTo(x, y);
    ctx.lineTo(px, py);
  }
  ctx.stroke();
}

function drawLabels(ctx, labels, toPx, w, h) {
  ctx.font = LABEL_FONT;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  const placed = [];
  for (const label of labels) {
    const [px, py] = toPx(label.x, label.y);
    if (!inside(px, py, w, h)) continue;
    label.width ??= ctx.measureText(label.text).width;
    const box = [px - label.width / 2 - 3, py - 9, px + label.width / 2 + 3, py + 9];
    if (placed.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) continue;
    placed.push(box);
    ctx.lineWidth = 4;
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
    ctx.strokeText(label.text, px, py);
    ctx.fillStyle = '#1d2733';
    ctx.fillText(label.text, px, py);
  }
  return placed.length;
}

// state: {x, y (NDC per row), highlighted, focus, linked, query, trail (NDC pairs), labels (NDC, sorted), box}
export function drawOverlay(ctx, state, xScale, yScale, w, h) {
  ctx.clearRect(0, 0, w, h);
  const rowPx = (row) => [xScale(state.x[row]), yScale(state.y[row])];
  const toPx = (x, y) => [xScale(x), yScale(y)];

  ctx.lineWidth = 1.5;
  ctx.strokeStyle = '#111';
  const shown = Math.min(state.highlighted.length, HIGHLIGHT_LIMIT);
  ctx.beginPath();
  for (let k = 0; k < shown; k++) {
    const [px, py] = rowPx(state.highlighted[k]);
    if (!inside(px, py, w, h)) continue;
    ctx.moveTo(px + 5, py);
    ctx.arc(px, py, 5, 0, 2 * Math.PI);
  }
  ctx.stroke();

  if (state.focus !== null && state.focus < state.x.length) {
    const [fx, fy] = rowPx(state.focus);
    spokes(ctx, [fx, fy], Array.from(state.linked, rowPx), 'rgba(20, 20, 20, 0.55)');
    for (const row of state.linked) {
      const [px, py] = rowPx(row);
      ctx.beginPath();
      ctx.arc(px, py, 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = '#fff';
      ctx.fill();
      ctx.stroke();
    }
    star(ctx, fx, fy, 10);
    ctx.fillStyle = '#ffd400';
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#222';
    ctx.stroke();
  }

  if (state.query && state.focus === null) { // an outside query's lines to its neighbours
    spokes(ctx, toPx(...state.query), Array.from(state.linked, rowPx), 'rgba(214, 39, 40, 0.45)');
  }

  const trail = state.query ? [...state.trail, state.query] : state.trail; // the trail leads to the query
  for (let k = 1; k < trail.length; k++) {
    const [ax, ay] = toPx(...trail[k - 1]);
    const [bx, by] = toPx(...trail[k]);
    ctx.strokeStyle = `rgba(214, 39, 40, ${(0.15 + (0.7 * k) / trail.length).toFixed(3)})`;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(ax, ay);
    ctx.lineTo(bx, by);
    ctx.stroke();
  }
  if (state.query) {
    const [qx, qy] = toPx(...state.query);
    ctx.beginPath();
    ctx.arc(qx, qy, 8, 0, 2 * Math.PI);
    ctx.fillStyle = 'rgba(214, 39, 40, 0.85)';
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#fff';
    ctx.stroke();
  }

  const labelsShown = drawLabels(ctx, state.labels, toPx, w, h);

  if (state.lasso && state.lasso.length > 1 && state.liveLimited) {
    ctx.beginPath(); // the library draws its lasso with the points; above the live limit the points wait
    state.lasso.forEach(([x, y], k) => ctx[k ? 'lineTo' : 'moveTo'](xScale(x), yScale(y)));
    ctx.strokeStyle = 'rgba(0, 120, 215, 0.95)';
    ctx.lineWidth = 2;
    ctx.stroke();
  }

  if (state.box) {
    const [x0, y0, x1, y1] = state.box;
    ctx.fillStyle = 'rgba(0, 120, 215, 0.08)';
    ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    ctx.strokeStyle = 'rgba(0, 120, 215, 0.9)';
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    ctx.setLineDash([]);
  }
  return labelsShown;
}
