// Density contours: the points binned on a GRID x GRID grid over the map's square [-1, 1]^2, blurred, traced
// by d3-contour once per set of points; drawing them after a pan or zoom is one canvas transform.
import { contours } from 'd3-contour';

const GRID = 128;
const LEVELS = 7;

function blur(values, size, radius) {
  const tmp = new Float32Array(values.length);
  const pass = (src, dst, stride, step) => {
    for (let line = 0; line < size; line++) {
      let acc = 0;
      const at = (i) => src[line * stride + i * step];
      for (let i = -radius; i <= radius; i++) acc += i >= 0 && i < size ? at(i) : 0;
      for (let i = 0; i < size; i++) {
        dst[line * stride + i * step] = acc / (2 * radius + 1);
        const out = i - radius;
        const inn = i + radius + 1;
        if (out >= 0) acc -= at(out);
        if (inn < size) acc += at(inn);
      }
    }
  };
  for (let k = 0; k < 2; k++) {
    pass(values, tmp, size, 1);
    pass(tmp, values, 1, size);
  }
  return values;
}

// Path2D per level in grid units (x right, y up, both 0..GRID), lightest first.
export function contourPaths(x, y) {
  const values = new Float32Array(GRID * GRID);
  for (let i = 0; i < x.length; i++) {
    const gx = Math.min(GRID - 1, Math.max(0, Math.floor(((x[i] + 1) / 2) * GRID)));
    const gy = Math.min(GRID - 1, Math.max(0, Math.floor(((y[i] + 1) / 2) * GRID)));
    values[gy * GRID + gx] += 1;
  }
  blur(values, GRID, 2);
  let max = 0;
  for (const v of values) max = Math.max(max, v);
  if (max <= 0) return [];
  const thresholds = Array.from({ length: LEVELS }, (_, k) => max * 0.04 * (1 / 0.04) ** (k / LEVELS));
  return contours().size([GRID, GRID]).thresholds(thresholds)(Array.from(values)).map((geometry) => {
    const path = new Path2D();
    for (const polygon of geometry.coordinates) {
      for (const ring of polygon) {
        ring.forEach(([gx, gy], i) => (i ? path.lineTo(gx, gy) : path.moveTo(gx, gy)));
        path.closePath();
      }
    }
    return path;
  });
}

// Grid units to pixels through the map's current scales (linear, from NDC).
export function drawContours(ctx, paths, xScale, yScale) {
  const a = (xScale(1) - xScale(-1)) / GRID;
  const c = (yScale(1) - yScale(-1)) / GRID;
  ctx.save();
  ctx.transform(a, 0, 0, c, xScale(-1), yScale(-1)); // on top of the device-pixel scale
  ctx.lineWidth = 1 / Math.abs(a);
  for (const path of paths) {
    ctx.fillStyle = 'rgba(70, 110, 170, 0.055)';
    ctx.fill(path, 'evenodd');
    ctx.strokeStyle = 'rgba(70, 110, 170, 0.35)';
    ctx.stroke(path);
  }
  ctx.restore();
}
