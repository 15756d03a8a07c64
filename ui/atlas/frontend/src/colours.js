// Point colours: a categorical palette as is, a continuous one interpolated to 256 steps, and grey last
// (the colour of filtered-out points), so every point is one category index for regl-scatterplot.

export const GREY = '#c9c9c9';

const rgb = (hex) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
const hex = (c) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;

export function pointColours(palette, continuous) {
  if (!continuous) return [...palette, GREY];
  const stops = palette.map(rgb);
  const out = [];
  for (let v = 0; v < 256; v++) {
    const t = (v / 255) * (stops.length - 1);
    const i = Math.min(Math.floor(t), stops.length - 2);
    const f = t - i;
    out.push(hex(stops[i].map((a, k) => a + (stops[i + 1][k] - a) * f)));
  }
  out.push(GREY);
  return out;
}

export function cssGradient(palette) {
  return `linear-gradient(to right, ${palette.join(', ')})`;
}
